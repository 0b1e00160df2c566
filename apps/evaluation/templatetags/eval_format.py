from django import template

register = template.Library()


@register.filter
def num(value, digits=3):
    """A number with `digits` decimals, or "—" when there is none (n/a is not zero)."""
    if value is None:
        return "—"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def pvalue(value):
    if value is None:
        return "—"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


@register.filter
def percent(value):
    """A share as a whole percentage, or "—" when there is none."""
    if value is None:
        return "—"
    return f"{100 * float(value):.0f} %"
