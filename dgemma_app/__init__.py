"""dgemma_app: code infilling and editing with a DiffusionGemma text diffusion model."""
