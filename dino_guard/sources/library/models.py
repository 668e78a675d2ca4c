"""Backbones: timm, torchvision, torch.hub, nn.Sequential of a ResNet's children, deepcopy."""

from __future__ import annotations

from typing import Any

from dino_guard import backbones
from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import Call, Starred
from dino_guard.sources.interp.values import Children, Obj, is_const, opaque
from dino_guard.sources.library.objects import record


def backbone_obj(call_pos: tuple, name: Any, name_pos: tuple, **facts: Any) -> Obj:
    obj = Obj("backbone", call_pos)
    if isinstance(name, str):
        obj.facts["name"] = (name, name_pos)
        info = backbones.lookup(name)
        if info is not None:
            obj.facts["feature_dim"] = (info.feature_dim, name_pos)
            obj.facts["patch_size"] = (info.patch_size, name_pos)
            obj.facts["in_table"] = (True, name_pos)
    for key, value in facts.items():
        if value is not None:
            obj.facts[key] = (value, name_pos)
    return obj


def timm_model(it, call: Call) -> Obj:
    name = call.arg(0, "model_name")
    name_pos = it.pos(call.kw_nodes.get("model_name") or (call.arg_nodes[0] if call.arg_nodes else call.node))
    obj = backbone_obj(call.pos, name if isinstance(name, str) else None, name_pos)
    for key in ("pretrained", "dynamic_img_size", "drop_path_rate"):
        if key in call.kwargs and is_const(call.kwargs[key]):
            obj.facts[key] = (call.kwargs[key], it.pos(call.kw_nodes[key]))
    info = backbones.lookup(name) if isinstance(name, str) else None
    img_size = call.kwargs.get("img_size")
    if info is not None and img_size is not None and img_size != info.img_size:
        obj.facts.pop("name", None)  # another input size than the table's: keep only width and patch
        obj.facts.pop("in_table", None)
    obj.facts["timm_call"] = (True, call.pos)  # where its keyword fixes go (dynamic_img_size=True); copies keep it
    if call.star:  # **cfg the reader cannot see into: it may set dynamic_img_size, img_size or patch_size
        obj.facts.pop("dynamic_img_size", None)
        obj.facts["open_kwargs"] = (True, call.pos)
    elif "pretrained" not in obj.facts:
        obj.facts["pretrained"] = (False, call.pos)  # timm's default: random weights
    _unpooled(it, obj, call)
    return record(it, obj)


def _unpooled(it, obj: Obj, call: Call) -> None:
    """timm's features_only=True (a list of maps) and global_pool='' (an unpooled map): not a feature vector."""
    if call.kwargs.get("features_only") is True:
        what = "a list of feature maps (features_only=True)"
    elif call.kwargs.get("global_pool") == "":
        what = "an unpooled feature map (global_pool='')"
    else:
        return
    obj.kind = "module"  # the table's pooled width no longer describes the output
    obj.facts["spatial"] = (what, it.pos(call.node))


def timm_function(it, name: str, call: Call) -> Obj:
    """timm's model functions take the same keywords as create_model, without the name."""
    shifted = Call(call.node, [name] + call.args, call.kwargs, call.star, [call.node.func] + call.arg_nodes,
                   call.kw_nodes, call.pos)
    return timm_model(it, shifted)


# torchvision families whose `.features` is the convolutional trunk: a feature map, not a vector.
MAP_FAMILIES = ("vgg", "alexnet", "densenet", "mobilenet", "efficientnet", "convnext", "squeezenet", "mnasnet")


def torchvision_model(it, name: str, call: Call) -> Any:
    full = backbones.TORCHVISION_PREFIX + name
    if backbones.lookup(full) is None:
        if name.startswith(MAP_FAMILIES):
            # width unknown here; .features is a map
            return Obj("module", call.pos, facts={"torchvision": (name, call.pos)})
        return opaque(call.pos)
    obj = backbone_obj(call.pos, full, call.pos, torchvision=name)
    if call.star:  # **cfg the reader cannot see into: it may set image_size
        obj.facts["open_kwargs"] = (True, call.pos)
    return record(it, obj)


def hub_model(it, call: Call) -> Any:
    model = call.arg(1, "model")
    name = api.HUB_MODELS.get(model) if isinstance(model, str) else None
    if name is None:
        return opaque(call.pos)
    pos = it.pos(call.kw_nodes.get("model") or (call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node))
    obj = backbone_obj(call.pos, name, pos, dynamic_img_size=True)  # the hub DINO ViTs interpolate position embeddings
    obj.facts.setdefault("in_table", (False, pos))
    return record(it, obj)


def is_backbone(value: Any) -> bool:
    return isinstance(value, Obj) and value.kind == "backbone"


def copy_backbone(source: Obj, pos: tuple) -> Obj:
    return Obj("backbone", pos, facts=dict(source.facts))


def sequential(it, call: Call) -> Any:
    if len(call.args) == 1 and isinstance(call.args[0], Starred):
        children = call.args[0].value
        if isinstance(children, Children) and children.drop == 1 and is_backbone(children.owner) \
                and children.owner.fact("patch_size") is None and "feature_dim" in children.owner.facts:
            return copy_backbone(children.owner, call.pos)  # a ResNet without its fc: pooled features
        if isinstance(children, Children) and children.drop == 2 and _is_resnet(children.owner):
            return Obj("module", call.pos, parts=[children.owner], facts={  # without avgpool and fc: the last map
                "spatial": ("a ResNet without its average pooling (children()[:-2], a feature map)", call.pos),
                "map_channels": (children.owner.fact("feature_dim"), call.pos)})
    return Obj("module", call.pos, parts=[a for a in call.args if isinstance(a, Obj)])



def last_child(owner: Any, pos: tuple) -> Obj | None:
    """list(resnet.children())[-1] of a torchvision ResNet is its classifier `fc` (in_features: the pooled width).

    Only while the script has not replaced `fc` (resnet.fc = nn.Identity() has no in_features).
    """
    if not (is_backbone(owner) and owner.fact("torchvision") in api.TORCHVISION_FC_NETS and "fc" not in owner.attrs):
        return None
    return Obj("fc", pos, facts={"in_features": owner.facts["feature_dim"]})


def _is_resnet(value: Any) -> bool:
    name = value.fact("name") if is_backbone(value) else None
    return isinstance(name, str) and "resnet" in name and value.fact("patch_size") is None


def deepcopy(it, value: Any, memo: dict) -> Any:
    if not isinstance(value, Obj):
        return value
    if id(value) in memo:
        return memo[id(value)]
    copy = Obj(value.kind, value.pos, facts=dict(value.facts), cls=value.cls, scope=value.scope)
    memo[id(value)] = copy
    copy.attrs = {k: deepcopy(it, v, memo) for k, v in value.attrs.items()}
    copy.parts = [deepcopy(it, p, memo) for p in value.parts]
    if id(value) in it.trace.frozen:
        it.trace.frozen.add(id(copy))  # deepcopy keeps requires_grad flags
    if id(value) in it.trace.object_ids:
        it.trace.object_ids.add(id(copy))
        it.trace.objects.append(copy)  # a copied head is a head the script trains with (freeze_last_layer and all)
    return copy

