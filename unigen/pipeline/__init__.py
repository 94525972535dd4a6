"""The method's stages (evaluate, target, generate, score, fit, export) and the loop composing them."""
