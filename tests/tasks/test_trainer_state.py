"""SafeTrainer keeps no state on its class: each run has its own progress file and epoch length."""

from types import SimpleNamespace

from espnet2.train.trainer import Trainer

from espnet_distill.tasks import trainer as trainer_module
from espnet_distill.tasks.trainer import SafeTrainer


def test_each_run_has_its_own_state_and_none_outlives_it(monkeypatch, tmp_path):
    seen = []

    def fake_run(cls, **kwargs):
        state = trainer_module._run_state.get()
        state.steps_per_epoch = 7  # what a real run's first epoch leaves for the next
        seen.append(state)

    monkeypatch.setattr(Trainer, "run", classmethod(fake_run))
    for _ in range(2):
        SafeTrainer.run(
            model=None,
            optimizers=[],
            schedulers=[],
            train_iter_factory=None,
            valid_iter_factory=None,
            plot_attention_iter_factory=None,
            trainer_options=SimpleNamespace(output_dir=str(tmp_path)),
            distributed_option=SimpleNamespace(distributed=False),
        )
    assert len(seen) == 2 and seen[0] is not seen[1]
    assert trainer_module._run_state.get(None) is None
    assert not [name for name in vars(SafeTrainer) if name in ("_progress", "_steps_per_epoch")]
