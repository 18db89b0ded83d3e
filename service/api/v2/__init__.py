"""The Open Inference Protocol (V2): codec of inference requests and responses, and schemas."""
