"""ShapesWorld: coloured shapes on a small canvas, prompts in GenEval's six categories.

Modules: ``vocab`` (words and colours), ``grammar`` (prompts + held-out split), ``plan``
(reasoning plan text, parser and check), ``render`` (scene drawing), ``judge`` (exact judge: strict, or
by GenEval's rules), ``rewards`` (reward callables), ``vq`` (VQ tokenizer fitting), ``tokenizer``
(text tokenizer), ``dataset`` (pretraining shards).
"""
