// Keyboard shortcuts and gap insertion for the dgemma_app page (loaded into <head> by the app).
(() => {
  const GAP = "<FILL>";

  // The CodeMirror 6 view behind the gr.Code editor, found from its DOM (null if the layout changes).
  function editorView() {
    const content = document.querySelector("#dgemma-editor .cm-content");
    const tile = content && content.cmView;
    if (!tile) return null;
    return tile.rootView ? tile.rootView.view : tile.view || null;
  }

  // Insert a gap marker at the cursor (replacing a selection); returns the editor's new text.
  function insertGap(code) {
    const view = editorView();
    if (!view) return (code || "") + GAP;
    view.dispatch(view.state.replaceSelection(GAP));
    view.focus();
    return view.state.doc.toString();
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button && !button.disabled) button.click();
  }

  // Capture phase, so the editor's own Mod-Enter / Mod-i bindings do not run first.
  document.addEventListener(
    "keydown",
    (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
      const key = event.key.toLowerCase();
      if (key !== "enter" && key !== "i") return;
      event.preventDefault();
      event.stopPropagation();
      press(key === "enter" ? "dgemma-fill" : "dgemma-insert");
    },
    true,
  );

  window.dgemma = { insertGap };
})();
