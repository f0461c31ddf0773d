"""`docker run --platform` (create's ?platform=): an image of another platform is refused
with dockerd's words (404, after which the docker CLI tries a pull of that platform), never
run as if it were the one asked for. Pure logic: engine/host_config.py's check."""
from __future__ import annotations

import pytest

from engine import host_config
from engine.errors import InvalidParameter, NotFound

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM_V7 = {"os": "linux", "architecture": "arm", "variant": "v7"}


@pytest.mark.parametrize("platform, image", [
    ("", AMD64), ("linux", AMD64), ("linux/amd64", AMD64), ("Linux/x86_64", AMD64),
    ("linux/arm", ARM_V7), ("linux/armhf", ARM_V7), ("linux/arm/v7", ARM_V7),
    ("linux/aarch64", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
])
def test_the_images_own_platform_is_accepted(platform, image):
    host_config.check_platform("busybox", platform, image)


@pytest.mark.parametrize("platform, image, wanted, actual", [
    ("linux/arm64", AMD64, "linux/arm64", "linux/amd64"),
    ("windows", AMD64, "windows", "linux/amd64"),
    ("linux/arm/v6", ARM_V7, "linux/arm/v6", "linux/arm/v7"),
])
def test_another_platform_is_refused_with_dockerds_words(platform, image, wanted, actual):
    with pytest.raises(NotFound) as e:
        host_config.check_platform("busybox", platform, image)
    assert str(e.value) == (f"image with reference busybox was found but does not match the "
                            f"specified platform: wanted {wanted}, actual: {actual}")


@pytest.mark.parametrize("platform", ["linux//amd64", "a/b/c/d", "/"])
def test_a_platform_that_is_no_platform_is_a_bad_request(platform):
    with pytest.raises(InvalidParameter, match="unknown operating system or architecture"):
        host_config.check_platform("busybox", platform, AMD64)
