"""Post-training with TRL: supervised fine-tuning and GRPO, their recipes and rewards."""
