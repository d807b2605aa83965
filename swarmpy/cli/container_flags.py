"""The container flags of `service create` and their `-add`/`-rm` forms on `service update`:
mounts, capabilities, sysctls, ulimits, groups, pids limit, init, read-only root, tty, stop signal,
log driver, generic resources, isolation, credential spec, and the templates allowed in hostname, env and mounts.

`apply_container_flags` fills a new spec; `update_container_flags` edits one read from the daemon the
way docker's `service update` does (lists merged by their key, then sorted as docker sorts them).
Only given flags touch the spec. Values are parsed by swarmpy.cli.container_values; a bad one is a
FlagError naming the flag and the value, raised before anything is sent.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from swarmpy import credential_spec, gotemplate
from swarmpy.api import objects_pb2
from swarmpy.cli import container_values as values
from swarmpy.cli.errors import FlagError, invalid_flag_value
from swarmpy.cli.value_parsers import parse_placement_pref


def given(options: Mapping[str, Any], name: str) -> bool:
    """Whether the user gave the flag (docker's flags.Changed): None and () mean not given."""
    value = options.get(name)
    return value is not None and value != ()


_given = given


def _parse_each(items, parse: Callable[[str], Any], flag: str, short: str | None = None) -> list:
    parsed = []
    for item in items or ():
        try:
            parsed.append(parse(item))
        except ValueError as exc:
            raise invalid_flag_value(item, flag, str(exc), short) from None
    return parsed


def check_template(text: str, flag: str, short: str | None = None) -> None:
    """Templates are expanded on the node; a malformed one is refused here, before it is stored."""
    if "{{" not in text:
        return
    try:
        gotemplate.parse(text)
    except gotemplate.TemplateError as exc:
        raise invalid_flag_value(text, flag, str(exc), short) from None


def _mounts(items, flag: str) -> list[objects_pb2.Mount]:
    mounts = _parse_each(items, values.parse_mount, flag)
    for item, mount in zip(items or (), mounts):
        check_template(mount.source, flag)
        check_template(mount.target, flag)
    targets = [m.target for m in mounts]
    duplicate = next((t for t in targets if targets.count(t) > 1), None)
    if duplicate is not None:
        raise FlagError(f"invalid argument for \"{flag}\" flag: duplicate mount target {duplicate}")
    return mounts


def _capabilities(items, flag: str) -> list[str]:
    return _parse_each(items, values.normalize_capability, flag)


def _isolation(text: str) -> str:
    if text.lower() not in ("default", ""):
        raise FlagError(f'invalid argument "{text}" for "--isolation" flag: Invalid isolation: "{text}" - linux only supports \'default\'')
    return text.lower()


def _log_driver(task: objects_pb2.TaskSpec, options: Mapping[str, Any], replace: bool) -> None:
    log_options = dict(_parse_each(options.get("log_opt"), values.parse_driver_option, "--log-opt"))
    if _given(options, "log_driver"):
        if replace or task.log_driver.name != options["log_driver"]:
            task.log_driver.Clear()
        task.log_driver.name = options["log_driver"]
    if log_options:
        if not task.log_driver.name:
            raise FlagError("--log-opt needs a log driver: give --log-driver as well")
        task.log_driver.options.update(log_options)


def _scalar_flags(container: objects_pb2.ContainerSpec, resources: objects_pb2.ResourceRequirements,
                  options: Mapping[str, Any]) -> None:
    """Flags of one value: the same on create and update."""
    for flag, field in (("init", "init"), ("read_only", "read_only"), ("tty", "tty")):
        if options.get(flag) is not None:
            setattr(container, field, options[flag])
    if _given(options, "stop_signal"):
        container.stop_signal = options["stop_signal"]
    if _given(options, "limit_pids"):
        resources.limits.pids = options["limit_pids"]
    if _given(options, "isolation"):
        container.isolation = _isolation(options["isolation"])
    if _given(options, "hostname"):
        check_template(options["hostname"], "--hostname")
    if _given(options, "credential_spec"):  # '' on update removes it, as docker's
        [parsed] = _parse_each([options["credential_spec"]], credential_spec.parse, "--credential-spec")
        if parsed.WhichOneof("source"):
            container.privileges.credential_spec.CopyFrom(parsed)
        else:
            container.ClearField("privileges")


def check_env_templates(variables, flag: str, short: str | None = None) -> None:
    for variable in variables:
        check_template(variable.partition("=")[2], flag, short)


def apply_container_flags(spec: objects_pb2.ServiceSpec, options: Mapping[str, Any]) -> None:
    """`service create`'s container flags onto a new spec."""
    task = spec.task
    container = task.container
    check_env_templates(container.env, "--env", "-e")
    _scalar_flags(container, task.resources, options)
    mounts = _mounts(options.get("mount"), "--mount")
    sysctls = dict(_parse_each(options.get("sysctl"), values.parse_sysctl, "--sysctl"))
    ulimits = {u.name: u for u in _parse_each(options.get("ulimit"), values.parse_ulimit, "--ulimit")}
    add, drop = values.effective_capabilities(_capabilities(options.get("cap_add"), "--cap-add"),
                                              _capabilities(options.get("cap_drop"), "--cap-drop"))
    if mounts:
        container.mounts.extend(mounts)
    if sysctls:
        container.sysctls.update(sysctls)
    if ulimits:
        container.ulimits.extend(ulimits[name] for name in sorted(ulimits))
    if options.get("group"):
        container.groups.extend(sorted(set(options["group"])))
    if add:
        container.capability_add.extend(add)
    if drop:
        container.capability_drop.extend(drop)
    _log_driver(task, options, replace=True)
    generic = _parse_each(options.get("generic_resource"), values.parse_generic_resource, "--generic-resource")
    if generic:  # touching the submessage would make an empty Reservations appear
        task.resources.reservations.generic.extend(_merge_generic([], generic))


def _merge_generic(existing, added) -> list[objects_pb2.GenericResource]:
    merged = {values.generic_resource_key(r): r for r in existing}
    for resource in added:
        merged[values.generic_resource_key(resource)] = resource
    return [merged[key] for key in sorted(merged)]


# ---------------------------------------------------------------- service update


def _update_mounts(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    if not (_given(options, "mount_add") or _given(options, "mount_rm")):
        return
    by_target = {m.target: m for m in _mounts(options.get("mount_add"), "--mount-add")}
    for mount in container.mounts:
        by_target.setdefault(mount.target, mount)
    removed = set(options.get("mount_rm") or ())
    kept = [m for target, m in by_target.items() if target not in removed]
    kept.sort(key=lambda m: (m.source, m.target))  # docker's order: by source, then target
    copies = [objects_pb2.Mount() for _ in kept]
    for copy, mount in zip(copies, kept):
        copy.CopyFrom(mount)
    container.ClearField("mounts")
    container.mounts.extend(copies)


def _update_ulimits(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    if not (_given(options, "ulimit_add") or _given(options, "ulimit_rm")):
        return
    by_name = {u.name: objects_pb2.Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in container.ulimits}
    for name in options.get("ulimit_rm") or ():
        by_name.pop(name.partition("=")[0], None)
    for ulimit in _parse_each(options.get("ulimit_add"), values.parse_ulimit, "--ulimit-add"):
        by_name[ulimit.name] = ulimit
    container.ClearField("ulimits")
    container.ulimits.extend(by_name[name] for name in sorted(by_name))


def _update_groups(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    if not (_given(options, "group_add") or _given(options, "group_rm")):
        return
    groups = (set(container.groups) | set(options.get("group_add") or ())) - set(options.get("group_rm") or ())
    container.ClearField("groups")
    container.groups.extend(sorted(groups))


def _update_capabilities(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    """docker: what --cap-add names leaves the drop list and the other way round."""
    if not (_given(options, "cap_add") or _given(options, "cap_drop")):
        return
    to_add = set(_capabilities(options.get("cap_add"), "--cap-add"))
    to_drop = set(_capabilities(options.get("cap_drop"), "--cap-drop"))
    add = (set(container.capability_add) - to_drop) | to_add
    drop = (set(container.capability_drop) - to_add) | to_drop
    add_list, drop_list = values.effective_capabilities(sorted(add), sorted(drop))
    container.ClearField("capability_add")
    container.ClearField("capability_drop")
    container.capability_add.extend(add_list)
    container.capability_drop.extend(drop_list)


def _update_generic(resources: objects_pb2.ResourceRequirements, options: Mapping[str, Any]) -> None:
    if not (_given(options, "generic_resource_add") or _given(options, "generic_resource_rm")):
        return
    removed = {item.partition("=")[0].strip() for item in options.get("generic_resource_rm") or ()}
    kept = [r for r in resources.reservations.generic if r.kind not in removed]
    added = _parse_each(options.get("generic_resource_add"), values.parse_generic_resource, "--generic-resource-add")
    merged = _merge_generic(kept, added)
    resources.reservations.ClearField("generic")
    resources.reservations.generic.extend(merged)


def _update_placement_prefs(placement: objects_pb2.Placement, options: Mapping[str, Any]) -> None:
    if not (_given(options, "placement_pref_add") or _given(options, "placement_pref_rm")):
        return
    removed = set(_parse_each(options.get("placement_pref_rm"), parse_placement_pref, "--placement-pref-rm"))
    added = _parse_each(options.get("placement_pref_add"), parse_placement_pref, "--placement-pref-add")
    kept = [p.spread for p in placement.preferences if p.spread not in removed]
    placement.ClearField("preferences")
    placement.preferences.extend(objects_pb2.PlacementPreference(spread=s) for s in kept + added)


def update_container_flags(spec: objects_pb2.ServiceSpec, options: Mapping[str, Any]) -> None:
    """`service update`'s container flags onto a copy of the spec read from the daemon."""
    task = spec.task
    container = task.container
    check_env_templates(options.get("env_add") or (), "--env-add")
    _scalar_flags(container, task.resources, options)
    _update_mounts(container, options)
    for key in options.get("sysctl_rm") or ():
        container.sysctls.pop(key.partition("=")[0], None)
    container.sysctls.update(dict(_parse_each(options.get("sysctl_add"), values.parse_sysctl, "--sysctl-add")))
    _update_ulimits(container, options)
    _update_groups(container, options)
    _update_capabilities(container, options)
    _log_driver(task, options, replace=False)
    _update_generic(task.resources, options)
    _update_placement_prefs(task.placement, options)
