"""Test helper: did a hybridized call really run the compiled path?"""


def compiled_somewhere(block) -> bool:
    """Whether ``block`` or one of its children has compiled a graph."""
    counts = []
    block.apply(lambda b: counts.append(getattr(b, "num_compilations", 0)))
    return sum(counts) > 0
