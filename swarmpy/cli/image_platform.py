"""The image's platform for `Placement.platforms`, where it is known.

docker's CLI asks the registry for the image's digest and platforms unless `--no-resolve-image` is
given. There is no registry here, so the CLI asks the local Docker engine, which knows the images it
holds: a local image's OS and architecture become the service's platform, so the scheduler keeps its
tasks off nodes of another platform. An image the engine does not hold (or no engine at all) leaves the
platforms unset, as docker does when it cannot reach the registry. No digest is ever recorded (no
registry to ask), so a command that asks for one gets the warning docker's client gives when the
registry cannot be reached (`resolve_image`).
"""

from __future__ import annotations

from swarmpy.api import objects_pb2


def local_image_platform(image: str) -> objects_pb2.Platform | None:
    try:
        import docker
        import docker.errors

        client = docker.from_env(timeout=5)
    except Exception:  # noqa: BLE001 - no SDK, no engine, a bad DOCKER_HOST: nothing is known
        return None
    try:
        attrs = client.images.get(image).attrs
    except (docker.errors.DockerException, OSError):
        return None
    finally:
        client.close()
    if not attrs.get("Os") and not attrs.get("Architecture"):
        return None
    return objects_pb2.Platform(architecture=attrs.get("Architecture", ""), os=attrs.get("Os", ""))


def resolve_platforms(spec: objects_pb2.ServiceSpec) -> None:
    """Record the image's platform in the spec's placement (replacing what an older image set)."""
    found = local_image_platform(spec.task.container.image)
    placement = spec.task.placement
    placement.ClearField("platforms")
    if found is not None:
        placement.platforms.append(found)


def digest_warning(image: str) -> str:
    """docker's client warning for an image it could not pin by digest (its words and line breaks)."""
    return (f"image {image} could not be accessed on a registry to record\nits digest. Each node will access"
            f" {image} independently,\npossibly leading to different nodes running different\nversions of the image.\n")


def resolve_image(spec: objects_pb2.ServiceSpec) -> str:
    """What docker's client does with QueryRegistry when the registry cannot be reached, with the local
    engine's platform in place of the registry's: the platforms set, the digest warning returned."""
    resolve_platforms(spec)
    return digest_warning(spec.task.container.image)
