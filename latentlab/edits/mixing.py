"""Style mixing and interpolation between latent codes."""
import torch


def style_mix(ws_dst, ws_src, layers):
    """Copy the ws layers `layers` (list of indices) from ws_src into a copy of ws_dst ([N, num_ws, w_dim] each)."""
    if ws_dst.shape != ws_src.shape:
        raise ValueError(f"cannot mix ws of shapes {tuple(ws_dst.shape)} and {tuple(ws_src.shape)}")
    out = ws_dst.clone()
    out[:, layers] = ws_src[:, layers]
    return out


def lerp(a, b, t):
    """a + t (b - a) for every t in the 1-D tensor `t`: [T, *a.shape]."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, *([1] * a.ndim))
    return torch.lerp(a.unsqueeze(0), b.unsqueeze(0), t)  # exact at both ends


def slerp(a, b, t, eps=1e-7):
    """Spherical interpolation of directions with linearly interpolated norms: [T, N, d] for a, b [N, d].

    The direction moves along the great circle between a/|a| and b/|b|; the norm
    goes from |a| to |b| linearly (so equal-norm endpoints keep their norm).
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device).reshape(-1, 1, 1)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    near = so < 1e-4  # nearly parallel: fall back to normalised lerp
    wa = torch.where(near, 1 - t, torch.sin((1 - t) * omega) / so)
    wb = torch.where(near, t, torch.sin(t * omega) / so)
    u = wa * ua + wb * ub
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    return u * ((1 - t) * na + t * nb)
