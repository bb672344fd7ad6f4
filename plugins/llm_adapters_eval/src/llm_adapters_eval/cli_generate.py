"""``llm-adapters generate``: answer one instruction, or chat in a loop, with streamed output."""

from __future__ import annotations

import click

from llm_adapters.cli_options import device_map_option, dtype_option, quantize_option


@click.command("generate")
@click.argument("prompt", required=False)
@click.option(
    "--model",
    default=None,
    help="Base model: an HF id, a local directory, or a name or file an installed model source handles "
    "(a .gguf file, the embedded smollm2-135m); default: the installed default model.",
)
@click.option(
    "--adapter-path",
    "adapter_paths",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="An adapter directory (repeatable: all are loaded and active together).",
)
@click.option("--template", default=None, help="Prompt template (default: the training default, alpaca).")
@click.option("--input", "input_text", default="", help="The optional input field of the template.")
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Most tokens to generate per answer.",
)
@click.option(
    "--num-beams",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Beam width (1: greedy or sampled, streamed; more: printed when done; no sampling or --stop).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Sampling temperature: 0 is greedy (the most likely token every step); above 0 samples, higher is "
    "more random.",
)
@click.option(
    "--top-p",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=1.0,
    show_default=True,
    help="Nucleus sampling: draw only from the most likely tokens whose probabilities add up to P (1: off).",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Draw only from the K most likely tokens (0: off).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the sampling: the same seed, instruction and settings give the same answer (default: random).",
)
@click.option(
    "--stop",
    "stop",
    multiple=True,
    help="Stop the answer where this text appears; the text is cut before it (repeatable).",
)
@dtype_option()
@quantize_option()
@device_map_option()
def command(
    prompt: str | None,
    model: str | None,
    adapter_paths: tuple[str, ...],
    template: str | None,
    input_text: str,
    max_new_tokens: int,
    num_beams: int,
    temperature: float,
    top_p: float,
    top_k: int,
    seed: int | None,
    stop: tuple[str, ...],
    dtype: str,
    quantize: str | None,
    device_map: str | None,
) -> None:
    """Generate a response to PROMPT (an instruction), streaming tokens as they come. Without PROMPT, read
    instructions from the terminal one per line until an empty input, `exit` or end of file (Ctrl-D).

    The instruction is wrapped in the same prompt template as training uses, so a tuned adapter sees what it
    was trained on. Decoding is greedy unless --temperature is above 0 (then --top-p, --top-k and --seed
    apply); --stop ends an answer at a text of your choice.
    """
    from llm_adapters.files import load_adapter
    from llm_adapters.models import load_model
    from llm_adapters_templates import DEFAULT_TEMPLATE

    from .generation import GenerationSettings, stream
    from .per_task import resolve_template

    resolve_template(template or DEFAULT_TEMPLATE, None)  # a misspelt name fails before the model loads
    settings = GenerationSettings(  # so do settings that do not go together (sampling with beams)
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        batch_size=1,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=seed,
        stop=stop,
    )
    lm, tokenizer = load_model(model, dtype=dtype, quantize=quantize, device_map=device_map)
    for i, path in enumerate(adapter_paths):
        load_adapter(lm, path, name=f"adapter{i}" if len(adapter_paths) > 1 else None)
    layout = resolve_template(template or DEFAULT_TEMPLATE, tokenizer)

    def answer(instruction: str) -> None:
        text = layout.prompt(instruction, input_text)
        stream(lm, tokenizer, text, lambda piece: click.echo(piece, nl=False), settings)
        click.echo()

    if prompt is not None:
        answer(prompt)
        return
    stdin = click.get_text_stream("stdin")
    interactive = stdin.isatty()
    if interactive:
        click.echo("Type an instruction and press Enter; an empty line, `exit` or Ctrl-D ends.", err=True)
    while True:
        if interactive:
            click.echo(">>> ", nl=False, err=True)
        line = stdin.readline()
        if not line:
            break
        instruction = line.strip()
        if not instruction or instruction in {"exit", "quit"}:
            if interactive or instruction:
                break
            continue
        answer(instruction)
