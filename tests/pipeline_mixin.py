"""Conventions every diffusers pipeline keeps, as diffusers' own PipelineTesterMixin checks them, for any pipeline
of this project: a test class sets ``pipeline_class`` and defines ``get_dummy_components()`` (tiny random models)
and ``get_dummy_inputs(seed, **overrides)`` (a fast call whose generator is seeded with ``seed``), and inherits
these tests.

- the same generator gives the same output, another seed another one;
- ``return_dict=False`` gives the output's fields as a tuple;
- ``save_pretrained`` / ``from_pretrained`` round-trips to the same outputs;
- one generator per image: a batch gives what single calls give;
- a list of generators must match the batch;
- ``callback_on_step_end`` sees every step and can replace the latents.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch


def _tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor an output holds (its fields, recursively through lists and dataclasses), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return [t for field in dataclasses.fields(output) for t in _tensors(getattr(output, field.name))]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    if hasattr(output, "to_tuple"):
        return _tensors(output.to_tuple())
    return []


class PipelineTesterMixin:
    pipeline_class: type
    # Batched convolutions round differently in the last bits: a batch matches single calls to this tolerance.
    batch_atol: float = 1e-5

    def get_dummy_components(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_dummy_inputs(self, seed: int = 0, **overrides: Any) -> dict[str, Any]:
        raise NotImplementedError

    def batch_inputs(self, seeds: tuple[int, ...]) -> dict[str, Any]:
        """Inputs for one call on len(seeds) images, one generator per image."""
        inputs = self.get_dummy_inputs(seeds[0])
        return {**inputs, "image": [inputs["image"]] * len(seeds),
                "generator": [torch.Generator().manual_seed(seed) for seed in seeds]}  # fmt: skip

    def make_pipeline(self):
        pipe = self.pipeline_class(**self.get_dummy_components())
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def assert_same(self, first: Any, second: Any, atol: float = 0.0) -> None:
        left, right = _tensors(first), _tensors(second)
        assert left and len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            torch.testing.assert_close(a, b, atol=atol, rtol=0.0 if atol == 0.0 else 1e-5)

    def test_same_generator_same_output_other_seed_differs(self):
        pipe = self.make_pipeline()
        first, again, other = (pipe(**self.get_dummy_inputs(seed)) for seed in (0, 0, 1))
        self.assert_same(first, again)
        with pytest.raises(AssertionError):
            self.assert_same(first, other)

    def test_return_dict_false_gives_the_fields_as_a_tuple(self):
        pipe = self.make_pipeline()
        output = pipe(**self.get_dummy_inputs(0))
        as_tuple = pipe(**self.get_dummy_inputs(0, return_dict=False))
        assert isinstance(as_tuple, tuple)
        self.assert_same(output, as_tuple)

    def test_save_load_round_trip(self, tmp_path):
        pipe = self.make_pipeline()
        pipe.save_pretrained(tmp_path)
        loaded = self.pipeline_class.from_pretrained(tmp_path)
        loaded.set_progress_bar_config(disable=True)
        self.assert_same(pipe(**self.get_dummy_inputs(0)), loaded(**self.get_dummy_inputs(0)))

    def test_a_batch_gives_what_single_calls_give(self):
        pipe = self.make_pipeline()
        batch = pipe(**self.batch_inputs((11, 12)), return_dict=False)
        for index, seed in enumerate((11, 12)):
            single = pipe(**self.get_dummy_inputs(seed), return_dict=False)
            for batched, alone in zip(batch, single, strict=True):
                if isinstance(batched, torch.Tensor):
                    torch.testing.assert_close(batched[index], alone[0], atol=self.batch_atol, rtol=1e-5)

    def test_generators_must_match_the_batch(self):
        pipe = self.make_pipeline()
        inputs = self.batch_inputs((1, 2))
        with pytest.raises(ValueError, match="generator"):
            pipe(**{**inputs, "generator": inputs["generator"][:1]})

    def test_callback_on_step_end_sees_every_step_and_can_replace_the_latents(self):
        pipe = self.make_pipeline()
        steps: list[int] = []

        def callback(pipeline, step: int, timestep: Any, tensors: dict[str, torch.Tensor]) -> dict:
            steps.append(step)
            return {"latents": torch.zeros_like(tensors["latents"])} if step == pipeline.num_timesteps - 1 else {}

        replaced = pipe(**self.get_dummy_inputs(0, callback_on_step_end=callback))
        assert steps == list(range(pipe.num_timesteps))
        with pytest.raises(AssertionError):
            self.assert_same(replaced, pipe(**self.get_dummy_inputs(0)))
