"""Self-generation: the single-pass unified sampler and trajectory generation."""

from unigen.generation.config import SampleResult, SamplingConfig
from unigen.generation.sampler import sample
from unigen.generation.rollouts import generate_trajectories, sample_seed

__all__ = ["SampleResult", "SamplingConfig", "generate_trajectories", "sample", "sample_seed"]
