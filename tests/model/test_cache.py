"""generate() with the HybridCache: same tokens as without it, left padding handled, O(1) Mamba state."""

from __future__ import annotations

import torch

from frontload.model import HybridCache, HybridForCausalLM, preset


def tiny_model(seed: int = 0) -> HybridForCausalLM:
    torch.manual_seed(seed)
    return HybridForCausalLM(preset("tiny", chunk_size=8, layer_pattern="M*M-M")).eval()


def test_greedy_generation_with_cache_equals_without() -> None:
    model = tiny_model()
    prompt = torch.randint(0, 512, (3, 11))
    with_cache = model.generate(prompt, max_new_tokens=20, do_sample=False)
    without = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False)
    assert with_cache.shape == (3, 31)
    assert torch.equal(with_cache, without)


def test_cached_decoding_reproduces_full_forward_logits() -> None:
    model = tiny_model(1)
    ids = torch.randint(0, 512, (2, 19))
    cache = HybridCache()
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        steps = [model(ids[:, :12], cache=cache, use_cache=True).logits]
        steps.append(
            model(ids[:, 12:15], cache=cache, use_cache=True).logits
        )  # multi-token continuation
        for t in range(15, 19):
            steps.append(model(ids[:, t : t + 1], cache=cache, use_cache=True).logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)
    assert cache.get_seq_length() == 19


def test_mamba_state_does_not_grow_with_context() -> None:
    model = tiny_model(2)
    cache = HybridCache()
    with torch.no_grad():
        model(torch.randint(0, 512, (1, 30)), cache=cache, use_cache=True)
        sizes = {i: cache.ssm_states[i].shape for i in cache.ssm_states}
        conv = {i: cache.conv_states[i].shape for i in cache.conv_states}
        for _ in range(5):
            model(torch.randint(0, 512, (1, 1)), cache=cache, use_cache=True)
    assert set(sizes) == {0, 2, 4}
    assert sizes == {i: cache.ssm_states[i].shape for i in cache.ssm_states}
    assert conv == {i: cache.conv_states[i].shape for i in cache.conv_states}
    assert cache.keys[1].shape[1] == 35  # only the attention layer grows


def test_left_padding_gives_the_tokens_of_unpadded_prompts() -> None:
    model = tiny_model(3)
    short = torch.randint(3, 512, (1, 6))
    long = torch.randint(3, 512, (1, 10))
    batch = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), short], dim=1), long])
    mask = torch.ones_like(batch)
    mask[0, :4] = 0
    padded = model.generate(
        batch, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0
    )
    alone_short = model.generate(short, max_new_tokens=12, do_sample=False)
    alone_long = model.generate(long, max_new_tokens=12, do_sample=False)
    assert torch.equal(padded[0, 10:], alone_short[0, 6:])
    assert torch.equal(padded[1, 10:], alone_long[0, 10:])
    # The padded positions must really be ignored: other pad token values give the same output.
    garbage = batch.clone()
    garbage[0, :4] = torch.randint(3, 512, (4,))
    again = model.generate(
        garbage, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0
    )
    assert torch.equal(again[:, 10:], padded[:, 10:])


def test_sampling_and_beam_search_run() -> None:
    model = tiny_model(4)
    prompt = torch.randint(0, 512, (2, 5))
    torch.manual_seed(0)
    sampled = model.generate(
        prompt, max_new_tokens=6, do_sample=True, top_p=0.9, num_return_sequences=2
    )
    assert sampled.shape == (4, 11)
    beams = model.generate(prompt, max_new_tokens=6, num_beams=3, do_sample=False)
    assert beams.shape[0] == 2


def test_an_empty_transformers_cache_is_replaced() -> None:
    from transformers import DynamicCache

    model = tiny_model(5)
    ids = torch.randint(0, 512, (1, 8))
    with torch.no_grad():
        out = model(ids, past_key_values=DynamicCache(), use_cache=True)
    assert isinstance(out.past_key_values, HybridCache)
    assert out.past_key_values.get_seq_length() == 8
