# dgemma_app: code infilling with a DiffusionGemma text diffusion model, served by Gradio on port 7860.
#
#   docker build -t dgemma-app .
#   docker run --rm -p 7860:7860 dgemma-app                      # the embedded default model, on the CPU
#
# GPU: PyPI's Linux torch wheel carries its own CUDA libraries, so an image built with the default
# PyPI index (TORCH_INDEX empty) runs on a GPU with only the host's NVIDIA driver and
# `docker run --gpus all`. BASE_IMAGE may name any Debian/Ubuntu-based image that has python3.11
# (or newer) as `python` and pip, for example one built FROM an NVIDIA CUDA runtime image:
#
#   docker build -t dgemma-app:gpu --build-arg TORCH_INDEX= --build-arg BASE_IMAGE=<cuda image with python> .
#   docker run --rm --gpus all -p 7860:7860 -v ~/.cache/huggingface:/home/app/.cache/huggingface \
#       -e DGEMMA_MODEL=google/diffusiongemma-26B-A4B-it -e DGEMMA_DEVICE_MAP=auto dgemma-app:gpu
#
# Settings come from DGEMMA_* environment variables (the same as the command-line flags; see
# docs/deploy.md). Nothing is downloaded at run time: a hub model must already be in the mounted cache.

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# CPU-only torch wheels by default (about 200 MB instead of several GB with CUDA libraries);
# pass --build-arg TORCH_INDEX= for PyPI's default (CUDA) build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_TEMP_DIR=/tmp/gradio \
    GRADIO_EXAMPLES_CACHE=/tmp/gradio/cached_examples \
    HF_HUB_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/home/app/.cache/huggingface

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes. The lines after
# "# tests" are test tools (pytest, hypothesis, playwright) and stay out of the image.
COPY requirements.txt ./
RUN sed '/^# tests/,$d' requirements.txt > /tmp/runtime-requirements.txt \
    && python -m pip install ${TORCH_INDEX:+--extra-index-url ${TORCH_INDEX}} -r /tmp/runtime-requirements.txt \
    && rm /tmp/runtime-requirements.txt

# The code and the embedded default model (models/dgemma-code-tiny), owned by root and read-only
# for the app user; only the Hugging Face cache in its home is writable.
COPY app.py ./
COPY dgemma_app/ dgemma_app/
COPY static/ static/
COPY examples/ examples/
COPY models/ models/

USER app

EXPOSE 7860

# The page answers once the model is loaded (serve loads it before listening): allow for that; a
# large model on a GPU may need --health-start-period raised at `docker run`. The port follows
# DGEMMA_PORT / GRADIO_SERVER_PORT as the app does, 7860 by default.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DGEMMA_PORT') or os.environ.get('GRADIO_SERVER_PORT') or '7860'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=4).status == 200 else 1)"]

CMD ["python", "app.py"]
