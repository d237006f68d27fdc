"""Every figure the text of a notebook quotes is one the notebook shows: a number in a markdown cell must appear
in a stored output of the same notebook, or in its code (a setting such as a learning rate), or be derived in the
sentence itself (after "=" or "≈"). A result that drifts when a notebook is executed again (a new seed, another
learning rate, a cell added before it) then fails here instead of being read as true.

What is not checked: small integers (counts such as "3 layers", "4 epochs"), years, version numbers after a
package's name, numbers inside LaTeX or inline code. The few remaining figures that come from elsewhere (a property of
a data set, a version) are listed in ELSEWHERE with where they come from. A quoted figure matches a printed value
rounded to the decimals the text gives. are listed in ELSEWHERE with where they come from.
"""
import re

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.instructor import notebooks

FIGURE = re.compile(r"(?<![\w.\-−])(\d+(?:[  ,]\d{3})*(?:\.\d+)?)(\s?%)?"
                    r"(?:\s?[×·]\s?10([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)|\s(million))?(?![\w])")
SHOWN_NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?(%)?")
MATH_AND_CODE = re.compile(r"```.*?```|\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`", re.S)
YEAR = re.compile(r"(19|20)\d\d")
AFTER_A_NAME = re.compile(r"(torch|PyTorch|Python|numpy|version|nbgrader|CUDA|ONNX|opset)\s*\(?\s*$", re.I)
DERIVED = re.compile(r"[=≈]\s*[−-]?\s*$")
SUPERSCRIPT = str.maketrans("⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹", "-+0123456789")

# Figures quoted from outside the notebook's outputs and code, per notebook: figure -> where it comes from.
ELSEWHERE = {
    "ch00": {"3.11": "the course's oldest Python (pyproject.toml)"},
    "ch01": {"17.5": "ceil(17.5) = 18: derived in the sentence, the number before the ceiling",
             "2.2 · 10⁻¹⁶": "float64's machine epsilon (numpy.finfo)"},
    "ch02": {"442": "the diabetes data set's size (scikit-learn's documentation)",
             "75 %": "the training share of the split, 1 − the test share 0.25 set in the code"},
    "ch05": {"8 970": "the network's weights and biases, 64·64 + 64 + 64·64 + 64 + 64·10 + 10",
             "0.99": "Keras's default momentum for batch normalization (its documentation)"},
    "ch06": {"7.5": "the T4's CUDA compute capability (NVIDIA's list of CUDA GPUs; autocast_dtype's docstring)"},
    "ch03": {"1797": "the digits data set's size (scikit-learn's documentation)",
             "709": "e^x overflows float64 above x ≈ 709.78 (log of float64's largest value)"},
}


def text_outputs(notebook):
    shown = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                shown.append(output.text)
            elif "text/plain" in output.get("data", {}):
                shown.append(output.data["text/plain"])
    return "\n".join(shown)


def shown_values(text):
    """Every number printed in `text`, as (value, printed as a percentage)."""
    return {(float(match.group(0).rstrip("%").replace(",", "").replace("−", "-")), bool(match.group(1)))
            for match in SHOWN_NUMBER.finditer(text)}


def matches_a_shown_value(number, percent, exponent, values):
    """Whether a printed value, rounded to as many decimals as the text quotes, is the quoted figure: 0.228 quotes a
    printed 0.2276, 97.6 % a printed 0.976 or 97.64%, 1.9 × 10⁸ a printed 1.94e+08."""
    decimals = len(number.split(".")[1]) if "." in number else 0
    for value, printed_percent in values:
        scaled = abs(value) / 10 ** exponent * (100 if percent and not printed_percent else 1)
        if f"{scaled:.{decimals}f}" == number:
            return True
    return False


def unaccounted_figures(notebook, elsewhere=()):
    """[(markdown cell index, figure as written, its context)] of the figures the notebook does not show."""
    values = shown_values(text_outputs(notebook))
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        text = MATH_AND_CODE.sub(" ", cell.source)
        for match in FIGURE.finditer(text):
            written, percent, power, million = match.groups()
            number = re.sub(r"[  ,]", "", written)
            exponent = int(power.translate(SUPERSCRIPT)) if power else 6 if million else 0
            before = text[max(0, match.start() - 12):match.start()]
            if "." not in number and len(number) < 3 and not (percent or power or million):
                continue  # a small count
            if (len(number) == 4 and YEAR.fullmatch(number)) or AFTER_A_NAME.search(before) or DERIVED.search(before):
                continue
            forms = {number, f"{int(number):_}" if number.isdigit() else number}
            if percent:
                forms.add(repr(float(number) / 100))  # 20 % set in code as 0.2
            in_code = any(re.search(r"(?<![\d.])" + re.escape(form) + r"(?![\d])", code) for form in forms)
            if match.group(0).strip() in elsewhere or in_code or matches_a_shown_value(number, percent, exponent, values):
                continue
            found.append((index, match.group(0).strip(), text[max(0, match.start() - 50):match.end() + 20]))
    return found


@pytest.mark.parametrize("path", notebooks.all_notebooks(), ids=lambda path: path.parent.name)
def test_every_figure_the_text_quotes_is_shown_by_the_notebook(path):
    notebook = notebooks.read(path)
    missing = unaccounted_figures(notebook, ELSEWHERE.get(path.parent.name, {}))
    assert not missing, f"{path.name}: figures in the text that no output or code of the notebook shows:\n" + "\n".join(
        f"  cell {index}: {figure!r} in …{' '.join(context.split())}…" for index, figure, context in missing)


def test_a_figure_that_drifted_from_its_output_is_caught():
    """The case this test exists for: chapter 09's text once quoted 0.960 and 0.964 after the outputs had moved to
    0.962 and 0.969."""
    notebook = notebooks.read(notebooks.chapter_notebook("ch09"))
    quoted = next(i for i, cell in enumerate(notebook.cells) if "Distillation did not beat" in cell.source)
    printed = re.search(r"distilled: (\d\.\d{3}); the same network trained on labels alone: (\d\.\d{3})",
                        text_outputs(notebook))
    assert printed and all(figure in notebook.cells[quoted].source for figure in printed.groups())
    assert unaccounted_figures(notebook) == unaccounted_figures(notebook)  # deterministic
    before = {figure for _, figure, _ in unaccounted_figures(notebook)}
    notebook.cells[quoted].source = notebook.cells[quoted].source.replace(printed.group(1), "0.960", 1)
    after = {figure for _, figure, _ in unaccounted_figures(notebook)}
    assert after - before == {"0.960"}


@pytest.mark.parametrize("text, flagged", [
    ("test accuracy 98.98 % after 20 epochs", ["98.98 %"]),
    ("a 20 % split set in code as a fraction, and 12.5 %", ["12.5 %"]),
    ("1.9 million parameters, 1.2 million steps", ["1.2 million"]),
    ("```\ntorchrun --rdzv-endpoint=node0:29400\n```", []),
    ("costs 0.004 after fine-tuning, the first convolution 27 %", ["0.004", "27 %"]),
    ("12 500 images and 4 epochs", ["12 500"]),
    ("Kingma and Ba (2015), torch 2.13, Python 3.11", []),
    ("the factor 1 − 25 · 0.0125 = 0.6875, then ≈ 0.37", []),
    ("inline `lr = 0.123` and $x^{0.456}$ are code and math", []),
    ("printed: 0.9889, and set in code: 0.0125", []),
    ("rounded: 0.228 and 0.23, 98.9 %, 1.9 × 10⁸ and 31 %", []),
    ("drifted: 0.229, 98.8 %, 2.0 × 10⁸ and 27 %", ["0.229", "98.8 %", "2.0 × 10⁸", "27 %"]),
])
def test_which_figures_count(text, flagged):
    notebook = new_notebook(cells=[new_markdown_cell(text), new_code_cell("LR, SPLIT = 0.0125, 0.2", outputs=[
        new_output("stream", name="stdout", text="accuracy 0.9889, loss 0.22764, 1.94e+08, 31%, 1,926,410 parameters\n")])])
    assert [figure for _, figure, _ in unaccounted_figures(notebook)] == flagged
