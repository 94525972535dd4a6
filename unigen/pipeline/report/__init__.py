"""The loop's report: per-category scores of every evaluation with paired bootstrap 95% intervals
(over seeds, prompts and samples), the gain of the post-trained model over the base, switch rates,
the rounds, an image grid, TensorBoard. :mod:`.scores` reads and re-scores the evaluation folders
and computes the intervals, :mod:`.tables` formats them, :mod:`.files` writes the report's files.
"""
