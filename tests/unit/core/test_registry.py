"""The one registry type: add, look up, refuse duplicates, and name the key with suggestions when unknown."""

import pytest

from suite.core.errors import ConfigError
from suite.core.registry import Registry


def test_lookup_suggests_close_names_and_lists_the_known_ones():
    colours = Registry("colour", "paint.colour", listing="registered")
    for name in ("red", "green", "blue"):
        colours.add(name, name.upper())
    assert colours.get("green") == "GREEN" and colours["red"] == "RED"
    assert colours.names() == ["blue", "green", "red"] and "blue" in colours and len(colours) == 3
    with pytest.raises(ConfigError) as error:
        colours.get("gren")
    assert str(error.value) == ("paint.colour: unknown colour 'gren' (did you mean 'green'?); "
                                "registered: blue, green, red")
    with pytest.raises(ConfigError, match="unknown colour 'purple'; registered"):
        colours.get("purple")


def test_a_name_registers_once_and_the_loader_runs_on_first_lookup():
    loaded = []
    shapes = Registry("shape", "shape", loader=lambda: loaded.append(shapes.add("disc", 1)))
    assert loaded == []
    assert shapes.get("disc") == 1 and loaded == [1]
    shapes.names()
    assert loaded == [1]  # once
    with pytest.raises(ValueError, match="registered twice"):
        shapes.add("disc", 2)
    assert shapes.remove("disc") == 1 and "disc" not in shapes
