"""Model export for other inference engines: CTranslate2 and safetensors (``nmt-export``)."""
