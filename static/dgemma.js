// Keyboard shortcuts and gap markers for the dgemma_app page (loaded into <head> by the app).
(() => {
  const GAP = "<FILL>";
  const OPEN = "<EDIT>";
  const CLOSE = "</EDIT>";
  const SHORTCUTS = { enter: "dgemma-fill", i: "dgemma-insert", e: "dgemma-edit" };

  // The CodeMirror 6 view behind the gr.Code editor, found from its DOM (null if the layout changes).
  // CodeMirror 6.39+ hangs a tile on the DOM (`cmTile`, whose root holds the view), older versions a
  // content view (`cmView`, whose rootView holds it); both are tried, as EditorView.findFromDOM does.
  function editorView() {
    const content = document.querySelector("#dgemma-editor .cm-content");
    if (!content) return null;
    for (const tile of [content.cmTile, content.cmView]) {
      const view = tile && (tile.view || (tile.root && tile.root.view) || (tile.rootView && tile.rootView.view));
      if (view && typeof view.dispatch === "function") return view;
    }
    return null;
  }

  // Apply `change(view)` to the editor and return its new text; without a view, `fallback(code)`.
  function edit(code, change, fallback) {
    const view = editorView();
    if (!view) {
      console.warn("dgemma: the editor's CodeMirror view was not found; the marker goes at the end");
      return fallback(code || "");
    }
    change(view);
    view.focus();
    return view.state.doc.toString();
  }

  // A gap at the caret; a selection is replaced by it.
  function insertGap(code) {
    return edit(code, (view) => view.dispatch(view.state.replaceSelection(GAP)), (text) => text + GAP);
  }

  // A short note under the editor (role alert), replaced by the next one and gone at the next key in the editor.
  function say(text) {
    const block = document.getElementById("dgemma-editor");
    if (!block) return;
    unsay();
    const note = document.createElement("div");
    note.className = "dg-range-note dg-editor-note";
    note.setAttribute("role", "alert");
    note.textContent = text;
    block.appendChild(note);
  }

  function unsay() {
    document.querySelectorAll(".dg-editor-note").forEach((note) => note.remove());
  }

  // Whether [from, to) holds an EDIT tag or sits inside an <EDIT>…</EDIT> region: wrapping it would nest EDITs.
  function inEdit(doc, from, to) {
    const inner = doc.slice(from, to);
    return inner.includes(OPEN) || inner.includes(CLOSE) || doc.lastIndexOf(OPEN, from) > doc.lastIndexOf(CLOSE, from);
  }

  // The selection wrapped in <EDIT>…</EDIT> and still selected inside it; at a bare caret the
  // empty pair goes in with the caret between the tags, ready to type the old code. EDITs do not nest:
  // a selection that holds a tag, or a caret inside a region, is refused with a note.
  function wrapEdit(code) {
    return edit(
      code,
      (view) => {
        const { from, to } = view.state.selection.main;
        if (inEdit(view.state.doc.toString(), from, to)) {
          say("Not wrapped: EDIT regions cannot nest, and this selection holds an <EDIT> tag or sits inside one. Select text outside them.");
          return;
        }
        unsay();
        const inner = view.state.sliceDoc(from, to);
        const start = from + OPEN.length;
        view.dispatch({
          changes: { from, to, insert: OPEN + inner + CLOSE },
          selection: { anchor: start, head: start + inner.length },
          scrollIntoView: true,
        });
      },
      (text) => text + OPEN + CLOSE,
    );
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button && !button.disabled) button.click();
  }

  // Capture phase, so the editor's own Mod-Enter / Mod-i / Mod-e bindings do not run first. Only in the
  // editor: elsewhere (the Seed box, a slider's number) the keys keep their usual meaning.
  document.addEventListener(
    "keydown",
    (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!target || !target.closest("#dgemma-editor")) return;
      if (!(event.ctrlKey || event.metaKey) || event.altKey) {
        unsay();
        return;
      }
      const id = SHORTCUTS[event.key.toLowerCase()];
      if (!id) return;
      event.preventDefault();
      event.stopPropagation();
      press(id);
    },
    true,
  );

  // The pass sliders' boxes: a number past the last pass is clamped here, before Gradio sends it (the server
  // would refuse it with a traceback in its log), and the note says so.
  const PASS_SLIDERS = ["#dgemma-pass", "#dgemma-compare-pass"];
  document.addEventListener(
    "input",
    (event) => {
      const input = event.target;
      if (!(input instanceof HTMLInputElement) || input.type !== "number" || !PASS_SLIDERS.some((id) => input.closest(id))) return;
      const block = input.closest(".block");
      const old = block.querySelector(".dg-range-note");
      if (old) old.remove();
      const [value, low, high] = [input.value, input.min, input.max].map(Number);
      if (input.value === "" || (value >= low && value <= high)) return;
      const kept = Math.min(Math.max(Math.round(value), low), high);
      input.value = String(kept);
      const note = document.createElement("div");
      note.className = "dg-range-note";
      note.setAttribute("role", "status");
      note.textContent = `There is no pass ${value}: the passes run from ${low} to ${high}; showing pass ${kept}.`;
      block.appendChild(note);
    },
    true,
  );

  // "change" beside the detected language opens the Language menu.
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element && event.target.closest(".dg-change");
    if (!button) return;
    const input = document.querySelector("#dgemma-language input");
    if (!input) return;
    input.scrollIntoView({ block: "center" });
    input.focus();
    input.click();
  });

  // A number typed into a slider's box outside its range is clamped by Gradio without a word; say so beside it.
  const LABEL = "number input for ";
  document.addEventListener(
    "change",
    (event) => {
      const input = event.target;
      const name = input instanceof HTMLInputElement && (input.getAttribute("aria-label") || "");
      if (!name || !name.startsWith(LABEL) || !input.closest("#dgemma-settings")) return;
      const block = input.closest(".block");
      const old = block.querySelector(".dg-range-note");
      if (old) old.remove();
      const [value, low, high] = [input.value, input.min, input.max].map(Number);
      if (input.value === "" || (value >= low && value <= high)) return;
      const note = document.createElement("div");
      note.className = "dg-range-note";
      note.setAttribute("role", "alert");
      const kept = Math.min(Math.max(value, low), high);
      note.textContent = `${name.slice(LABEL.length)}: ${input.value} is outside ${low} to ${high}; the slider set it to ${kept}.`;
      block.appendChild(note);
    },
    true,
  );

  // During a fill, bring the live canvas into view once (it is below the fold on most screens).
  function followFill() {
    const box = document.getElementById("dgemma-canvas");
    if (!box) return;
    const observer = new MutationObserver(() => {
      const caption = box.querySelector(".dg-caption");
      if (!caption || !caption.textContent.startsWith("Live")) return;
      observer.disconnect();
      const { top, bottom } = box.getBoundingClientRect();
      if (top < 0 || bottom > window.innerHeight) box.scrollIntoView({ behavior: "smooth", block: "center" });
    });
    observer.observe(box, { childList: true, subtree: true, characterData: true });
  }

  window.dgemma = { insertGap, wrapEdit, followFill };
})();
