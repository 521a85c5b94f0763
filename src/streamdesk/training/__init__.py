"""Training: retrain trigger, KTO + LoRA/QLoRA trainer, eval gate, adapter registry and promotion."""
