"""A tiny random Llama chat model, built locally, for testing the real transformers code path.

`build_tiny_llama(directory)` trains a byte-level BPE tokenizer on a small corpus with the
`tokenizers` library, gives it a ChatML-style chat template (which also renders tools and tool
calls), builds a randomly initialised 2-layer `LlamaForCausalLM`, and saves both with
`save_pretrained`, so `TransformersModel(directory)` loads it exactly like a user's local model
directory. Nothing is downloaded. Building takes about a second (after importing torch).

The weights are random, so the text is gibberish, but it is deterministic (greedy decoding, fixed
seed). The output rows of the special tokens, of control characters and of byte tokens that are
not whole characters are zeroed (their logit is always 0 while the best random logit is
positive), so the model never ends a turn on its own and always writes printable text: every
generation runs to `max_new_tokens` unless a stop sequence ends it first. Its generation config
asks for sampling (temperature 0.7, top_p, top_k), as real instruct models' do, so a greedy
request must override it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_llama"]

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = """\
{%- if tools %}<|im_start|>system
You can call these tools. Answer with JSON {"name": ..., "arguments": {...}}:
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}<|im_end|>
{% endif %}
{%- for message in messages %}<|im_start|>{{ message.role }}
{{ message.content or "" }}
{%- for call in message.tool_calls or [] %}
{"name": {{ call.function.name | tojson }}, "arguments": {{ call.function.arguments | tojson }}}
{%- endfor %}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

_CORPUS = [
    "Thought: I will compute the answer with Python and print it.",
    "Code:\n```py\nresult = sum(range(10))\nprint(result)\nfinal_answer(result)\n```<end_code>",
    "Observation: 45",
    'Action: {"name": "get_price", "arguments": {"item": "apple"}}',
    "The quick brown fox jumps over the lazy dog. What is the 20th Fibonacci number?",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    "You are an expert assistant who can solve any task using code blobs and tools.",
    "Les élèves ont mangé des crêpes; 東京 is a city; emoji: 🦙🐍 and numbers 0123456789.",
]


def _train_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def _muted_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Special tokens, control characters, and tokens that are not whole characters on their own."""
    special = set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i in special or not _clean(str(tokenizer.decode([i])))]


def _clean(text: str) -> bool:
    return "\ufffd" not in text and all(c.isprintable() or c in "\n\t" for c in text)


def build_tiny_llama(directory: Path, *, seed: int = 0, vocab_size: int = 384) -> Path:
    """Build and save the tiny model and tokenizer in `directory`; returns `directory`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer(vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,  # agent system prompts are long in this small vocabulary
        tie_word_embeddings=False,
        initializer_range=0.2,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight[_muted_ids(tokenizer)] = 0.0
    directory.mkdir(parents=True, exist_ok=True)
    # Sampling defaults like a real instruct model's, so greedy decoding must override them.
    model.generation_config.update(do_sample=True, temperature=0.7, top_p=0.8, top_k=20)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
