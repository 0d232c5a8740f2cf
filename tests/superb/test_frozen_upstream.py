"""The frozen upstream and its weighted layer sum: the sum against a hand computation, the teacher and its
exported student give the same states, only the layer weights and the downstream learn."""

import pytest
import torch

from espnet_distill.asr.build import build_ctc_model, ctc_args
from espnet_distill.distill.export import export_teacher_as_student
from espnet_distill.files.teacher_spec import write_spec
from espnet_distill.superb.featurizer import WeightedLayersFrontend, layer_weights_of
from espnet_distill.superb.upstream import load_upstream
from tests.conftest import REPO_ROOT, tiny_batch


@pytest.fixture(scope="module")
def upstreams(tiny_teacher_path, tmp_path_factory):
    """``(teacher.yaml, the teacher exported as a student dir)`` of the tiny teacher."""
    root = tmp_path_factory.mktemp("upstreams")
    spec = write_spec(root / "teacher", "torchaudio", {"path": str(tiny_teacher_path)})
    export_teacher_as_student(spec, root / "teacher_student")
    return spec, root / "teacher_student"


def test_a_teacher_and_its_export_as_a_student_give_the_same_hidden_states(upstreams, tiny_corpus):
    speech, lengths = tiny_batch(tiny_corpus, count=2)
    teacher, student = load_upstream(upstreams[0]), load_upstream(upstreams[1])
    assert teacher.num_states == student.num_states == 4  # the input of layer 1, then 3 layers
    assert teacher.output_size() == student.output_size() == 64
    assert teacher.frame_shift == student.frame_shift == 320
    with torch.no_grad():
        (a, a_lengths), (b, b_lengths) = teacher(speech, lengths), student(speech, lengths)
    assert torch.equal(a_lengths, b_lengths)
    for x, y in zip(a, b):
        assert x.shape == (2, int(a_lengths.max()), 64)
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


def test_the_weighted_sum_is_softmax_weights_of_layer_normalized_states(upstreams, tiny_corpus):
    speech, lengths = tiny_batch(tiny_corpus, count=2)
    frontend = WeightedLayersFrontend(str(upstreams[1]))
    with torch.no_grad():
        frontend.layer_weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        out, out_lengths = frontend(speech, lengths)
        states, state_lengths = frontend.upstream(speech, lengths)
    weights = [
        float(w) for w in torch.tensor([0.5, -1.0, 2.0, 0.0]).exp() / torch.tensor([0.5, -1.0, 2.0, 0.0]).exp().sum()
    ]
    expected = torch.zeros_like(states[0])
    for w, x in zip(weights, states):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        expected += w * (x - mean) / torch.sqrt(var + 1e-5)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(out_lengths, state_lengths)
    assert frontend.weights() == pytest.approx(weights)
    assert layer_weights_of({"frontend.layer_weights": frontend.layer_weights.detach()}) == pytest.approx(weights)
    fresh = WeightedLayersFrontend(str(upstreams[1]))
    assert fresh.weights() == pytest.approx([0.25] * 4)  # equal weights at the start


def upstream_ctc_model(upstream: str, random_init: bool = False) -> torch.nn.Module:
    structure = dict(
        frontend="upstream",
        frontend_conf=dict(upstream=upstream, random_init=random_init),
        encoder="rnn",
        encoder_conf=dict(num_layers=1, hidden_size=16, output_size=16, use_projection=False, subsample=None),
    )
    return build_ctc_model(ctc_args(structure, ["<blank>", "<unk>", "A", "B", "<space>", "<sos/eos>"]))


def test_gradients_reach_only_the_layer_weights_and_the_downstream(upstreams, tiny_corpus):
    torch.manual_seed(0)
    model = upstream_ctc_model(str(upstreams[0])).train()
    speech, lengths = tiny_batch(tiny_corpus, count=2)
    order = torch.argsort(lengths, descending=True)  # ESPnet's RNN packs batches sorted as its loader sorts them
    speech, lengths = speech[order], lengths[order]
    text = torch.tensor([[2, 4, 3], [3, 2, -1]])
    loss, _, _ = model(speech, lengths, text, torch.tensor([3, 2]))
    loss.backward()
    learnt = {name for name, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    assert "frontend.layer_weights" in learnt
    assert any(name.startswith("encoder.") for name in learnt) and any(name.startswith("ctc.") for name in learnt)
    assert all(not name.startswith("frontend.upstream.") for name in learnt)
    assert all(not p.requires_grad for p in model.frontend.upstream.parameters())
    assert not model.frontend.upstream.training  # no dropout in the frozen upstream while the downstream trains


def test_random_init_is_the_structure_with_seeded_random_weights(upstreams):
    trained = load_upstream(upstreams[1])
    first = load_upstream(upstreams[1], random_init=True, seed=3)
    again = load_upstream(upstreams[1], random_init=True, seed=3)
    other = load_upstream(upstreams[1], random_init=True, seed=4)
    pairs = lambda m: dict(m.named_parameters())  # noqa: E731
    name = "encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"
    assert name in pairs(trained)
    assert pairs(first)[name].shape == pairs(trained)[name].shape
    assert torch.equal(pairs(first)[name], pairs(again)[name])
    assert not torch.equal(pairs(first)[name], pairs(other)[name])
    assert not torch.equal(pairs(first)[name], pairs(trained)[name])
    with pytest.raises(ValueError, match="random_init needs a student dir"):
        load_upstream(upstreams[0], random_init=True)


def test_a_path_that_is_no_upstream_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/nothing: not an upstream"):
        load_upstream(tmp_path / "nothing")


def test_the_fbank_upstream_is_the_recipes_normalized_filterbanks(tiny_corpus, tmp_path):
    import numpy as np

    from espnet_distill.frontend.fbank import FbankFrontend

    stats = tmp_path / "feats_stats.npz"
    np.savez(stats, count=100, sum=np.full(80, 50.0), sum_square=np.full(80, 400.0))  # mean 0.5, std sqrt(3.75)
    speech, lengths = tiny_batch(tiny_corpus, count=2)
    frontend = WeightedLayersFrontend("fbank", stats_file=str(stats))
    assert frontend.upstream.num_states == 1 and frontend.output_size() == 80 and frontend.frame_shift == 160
    with torch.no_grad():
        out, out_lengths = frontend(speech, lengths)
        expected, expected_lengths = FbankFrontend(stats_file=stats).features(speech, lengths)
    torch.testing.assert_close(out, expected)  # one state: no layer norm, weight 1
    assert torch.equal(out_lengths, expected_lengths) and out.shape[-1] == 80
    assert abs(float(expected[0, : int(expected_lengths[0])].mean())) > 0.1  # the CMVN of these stats, not of the data
    with pytest.raises(ValueError, match="needs stats_file"):
        load_upstream("fbank")


SUPERB_CONFIGS = [
    # LibriSpeech's 2 x 1024 BiLSTM takes seconds to build: the full tier's.
    pytest.param(p, id=f"{p.parts[-5]}/{p.name}", marks=[pytest.mark.slow] if "librispeech" in p.parts else [])
    for p in sorted(REPO_ROOT.glob("egs/*/asr1/conf/superb/*.yaml"))
]


@pytest.mark.parametrize("config", SUPERB_CONFIGS)
def test_every_superb_config_builds_its_downstream_on_a_frozen_upstream(config, upstreams, tmp_path):
    from espnet_distill.tasks.asr import ASRTask

    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", "a", "b", "<sos/eos>"]) + "\n")
    args = ASRTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(tokens), "--token_type", "word", "--output_dir", str(tmp_path)]
        + ["--frontend_conf", f"upstream={upstreams[1]}"]
    )
    model = ASRTask.build_model(args)
    assert isinstance(model.frontend, WeightedLayersFrontend) and model.frontend.upstream.num_states == 4
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"frontend", "encoder", "ctc"}
    assert [n for n, p in model.frontend.named_parameters() if p.requires_grad] == ["layer_weights"]
    task = "pr" if config.stem == "pr" else "asr"
    if task == "asr":  # a bidirectional LSTM of 2 layers (SUPERB's: 1024 units each way on LibriSpeech)
        encoder = model.encoder  # encoder: blstm, ESPnet's RNNEncoder computed without packing
        assert len(encoder.forward_layers) == len(encoder.backward_layers) == 2
        assert encoder.forward_layers[0].input_size == encoder.backward_layers[0].input_size == 64
        assert encoder.forward_layers[1].input_size == 2 * encoder.forward_layers[0].hidden_size
        assert encoder.forward_layers[0].hidden_size == (1024 if "librispeech" in str(config) else 256)
    else:  # frame-level: a projection to 256, then CTC
        assert model.encoder.output_size() == 256 and model.ctc.ctc_lo.in_features == 256
