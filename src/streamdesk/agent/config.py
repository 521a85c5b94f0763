"""Agent constants: the bundled model's file names. Its settings (`AgentSettings`, `STREAMDESK_AGENT__*`) are a
section of the root settings in `streamdesk.config`, with the helpers that read them (`agent_settings`,
`adapters_dir`); `agent.model_cache.model_cache_dir` says where the converted model lives.
"""

MODEL_CACHE_NAME = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
