"""Test helper: did a hybridized call really run the compiled path?"""

from hybrid import engine


def compiled_somewhere(block) -> bool:
    """Whether ``block`` or one of its children has compiled a graph (a captured
    recorded call compiles when its capture runs: it is run first)."""
    engine.flush()
    counts = []
    block.apply(lambda b: counts.append(getattr(b, "num_compilations", 0)))
    return sum(counts) > 0
