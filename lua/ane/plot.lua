--- ane.plot: loss curves as a self-contained SVG (open it in a browser).
--   plot.loss_svg{train = {{step, loss}, ...}, eval = {{step, loss}, ...}, title = "..."} -> text
-- Train loss is a thin line, eval loss a thicker one with dots; axes are labelled ("step",
-- "loss"), with round-number ticks and a legend.
local M = {}

local W, H = 720, 420
local L, R, T, B = 70, 20, 40, 55 -- margins

local function nice_ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs { 1, 2, 5, 10 } do
    if m * mag >= raw then step = m * mag; break end
  end
  local ticks = {}
  local v = math.ceil(lo / step) * step
  while v <= hi + step * 1e-9 do ticks[#ticks + 1] = v; v = v + step end
  return ticks, step
end

local function fmt(v, step)
  if step >= 1 then return string.format("%d", math.floor(v + 0.5)) end
  local d = math.max(0, math.ceil(-math.log(step, 10)))
  return string.format("%." .. d .. "f", v)
end

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

-- At most max points: keep every k-th (and the last).
local function thin(pts, max)
  if #pts <= max then return pts end
  local k, out = math.ceil(#pts / max), {}
  for i = 1, #pts, k do out[#out + 1] = pts[i] end
  if out[#out] ~= pts[#pts] then out[#out + 1] = pts[#pts] end
  return out
end

function M.loss_svg(o)
  local train, eval = thin(o.train or {}, 1500), o.eval or {}
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for _, set in ipairs { train, eval } do
    for _, p in ipairs(set) do
      if p[2] == p[2] and p[2] < math.huge then
        xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
        ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      end
    end
  end
  if xmin == math.huge then xmin, xmax, ymin, ymax = 0, 1, 0, 1 end
  if xmax == xmin then xmax = xmin + 1 end
  if ymax == ymin then ymax, ymin = ymax + 0.5, ymin - 0.5 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = math.max(0, ymin - pad), ymax + pad
  local pw, ph = W - L - R, H - T - B
  local function X(v) return L + (v - xmin) / (xmax - xmin) * pw end
  local function Y(v) return T + (1 - (v - ymin) / (ymax - ymin)) * ph end
  local out = {}
  local function add(...) out[#out + 1] = string.format(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="100%%" height="100%%" fill="white"/>')
  add('<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>', L, esc(o.title or "training loss"))
  local xt, xs = nice_ticks(xmin, xmax, 8)
  local yt, ys = nice_ticks(ymin, ymax, 6)
  for _, v in ipairs(xt) do
    add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>', X(v), T, X(v), T + ph)
    add('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', X(v), T + ph + 16, fmt(v, xs))
  end
  for _, v in ipairs(yt) do
    add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>', L, Y(v), L + pw, Y(v))
    add('<text x="%d" y="%.1f" text-anchor="end">%s</text>', L - 6, Y(v) + 4, fmt(v, ys))
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', L, T, pw, ph)
  add('<text x="%d" y="%d" text-anchor="middle">step</text>', L + pw // 2, H - 14)
  add('<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">loss (nats/token)</text>',
    T + ph // 2, T + ph // 2)
  local function poly(pts, color, width)
    if #pts == 0 then return end
    local s = {}
    for i, p in ipairs(pts) do s[i] = string.format("%.1f,%.1f", X(p[1]), Y(p[2])) end
    add('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>', color, width, table.concat(s, " "))
  end
  poly(train, "#4878d0", "1.2")
  poly(eval, "#d65f5f", "2")
  for _, p in ipairs(eval) do add('<circle cx="%.1f" cy="%.1f" r="3" fill="#d65f5f"/>', X(p[1]), Y(p[2])) end
  local lx = L + pw - 150
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#4878d0" stroke-width="2"/>', lx, T + 14, lx + 24, T + 14)
  add('<text x="%d" y="%d">train loss</text>', lx + 30, T + 18)
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d65f5f" stroke-width="2"/>', lx, T + 32, lx + 24, T + 32)
  add('<text x="%d" y="%d">eval loss (held out)</text>', lx + 30, T + 36)
  add("</svg>")
  return table.concat(out, "\n") .. "\n"
end

return M
