"""Attention: heads stay heads (the same offsets go from every head), FFN width shrinks; Hugging Face BERT
keeps its hidden size, torchvision's ViT shrinks its residual stream with nn.MultiheadAttention."""

import onnxruntime as ort
import torch
from _pruned import check_pruned

import deepseek
from deepseek.pruning import output_layers, prune_channels


def _bert_inputs():
    from deepseek import assets

    encoder, tokenizer = assets.minilm()  # a real BertModel (all-MiniLM-L6-v2)
    enc = tokenizer(["a fine film", "dull"], padding="max_length", max_length=16, return_tensors="pt")
    return encoder.eval(), (enc["input_ids"], enc["attention_mask"])


def test_hugging_face_bert_head_width_and_ffn_shrink_hidden_size_stays(tmp_path):
    encoder, x = _bert_inputs()
    with torch.no_grad():
        ref = encoder(*x)
    result = prune_channels(encoder, 0.5, x)
    model = result.model
    for layer in model.encoder.layer:  # every layer, every time: the groups do not depend on memory layout
        attention = layer.attention.self
        assert attention.query.out_features == attention.key.out_features == attention.value.out_features == 192
        assert attention.num_attention_heads == 12 and attention.attention_head_size == 16 == attention.all_head_size // 12
        assert layer.intermediate.dense.out_features == 768 == layer.output.dense.in_features
        assert layer.output.dense.out_features == 384  # the residual stream keeps its width
    with torch.no_grad():
        out = model(*x)
    assert out.last_hidden_state.shape == ref.last_hidden_state.shape and out.pooler_output.shape == ref.pooler_output.shape
    assert encoder.encoder.layer[0].attention.self.query.out_features == 384  # the original is untouched
    from deepseek.models import HiddenStates

    path = deepseek.export_onnx(HiddenStates(model).eval(), x, tmp_path / "bert_pruned.onnx",
                                input_names=["input_ids", "attention_mask"]).path
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": x[0].numpy(), "attention_mask": x[1].numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), out.last_hidden_state, atol=1e-3, rtol=1e-3)


def test_output_layers_are_only_the_layers_producing_outputs():
    # freed intermediates' memory is reused by the outputs: a pointer comparison alone once named random
    # inner layers here, and pruning then skipped them at random
    encoder, x = _bert_inputs()
    for _ in range(3):
        assert output_layers(encoder, x) == []  # last_hidden_state comes from a LayerNorm, pooler_output from tanh


def test_torchvision_vit_b16_heads_keep_their_structure(tmp_path):
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    # torchvision's ViT-B/16 layer (12 heads of 64, 768 wide, MLP 3072, patch 16), 2 of its 12 layers: each layer is
    # pruned alike, and the export that checks the pruned model takes a sixth of the time
    model = VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=12, hidden_dim=768, mlp_dim=3072,
                              num_classes=10).eval()
    dense_proj = model.conv_proj.weight.flatten(1).clone()
    pruned = check_pruned(model, torch.randn(1, 3, 64, 64), tmp_path).model
    assert pruned.hidden_dim == pruned.conv_proj.out_channels == 384
    for layer in pruned.encoder.layers:
        attention = layer.self_attention
        assert attention.embed_dim == 384 and attention.num_heads == 12 and attention.head_dim == 32
    # which residual channels survived: the same offsets within each of the 12 heads of 64
    kept = [int((dense_proj - row).abs().sum(1).argmin()) for row in pruned.conv_proj.weight.flatten(1)]
    offsets = [sorted(k % 64 for k in kept if k // 64 == h) for h in range(12)]
    assert all(o == offsets[0] for o in offsets) and len(offsets[0]) == 32


def test_bert_base_architecture(tmp_path):
    """BERT-base's own dimensions (12 layers, 12 heads of 64, FFN 3072; random init — no offline checkpoint)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(), add_pooling_layer=False).eval()
    x = (torch.randint(0, 30522, (1, 16)), torch.ones(1, 16, dtype=torch.long))
    result = prune_channels(model, 0.5, x, round_to=8)
    for layer in result.model.encoder.layer:
        attention = layer.attention.self
        assert attention.query.out_features == 384 and attention.attention_head_size == 32
        assert layer.intermediate.dense.out_features == 1536 and layer.output.dense.out_features == 768
    with torch.no_grad():
        assert result.model(*x).last_hidden_state.shape == (1, 16, 768)
    assert 0.5 < result.param_ratio < 0.8  # embeddings (23M of 109M) keep their width
