"""Model families the engine can drive: `base` is the seam (protocol, records, registry); each family module
registers its backend under its checkpoints' `model_type` when imported (`model.py` imports them all).

- `diffusion_gemma`: the app's models, through the library's own `generate`.
- `rule`: no model; it proves the seam in tests and shows where a masked-diffusion family (LLaDA, Dream) plugs in.

Nothing is imported here, so the engine can use the registry without loading any model library.
"""
