"""Layer 3: the model folder (config.json + model.safetensors), the Hub, model cards, published weights."""
