"""PyTorch files read without torch: ``torch.save`` zips, safetensors, stable-baselines3 saves."""
