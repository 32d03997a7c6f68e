"""Labels: providers (Cloud Vision, offline ImageNet, alt text, hashtags), the label store and suggestions."""
