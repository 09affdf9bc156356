--- ane.llm.chat: chat templates (tokenizer_config.json's `chat_template`) rendered by a small
-- Jinja subset, enough for the Llama and Qwen2 templates:
--   text, {{ expr }}, {% if/elif/else/endif %}, {% for x in expr %}...{% endfor %} (loop.first,
--   loop.last, loop.index, loop.index0, loop.length), {% set name = expr %}, {# comments #},
--   whitespace control ({%- -%} {{- -}}); expressions: strings, numbers, true/false/none, names,
--   a.b, a[i], a[i:j], calls of raise_exception(msg), filters (| trim, length, upper, lower,
--   tojson), methods .strip() .startswith(s) .endswith(s), + ~ == != < > <= >= % and or not in,
--   `is [not] defined|none|string`, and `x if c else y`.
-- Rendering follows Hugging Face's settings (trim_blocks, lstrip_blocks). Anything else (macros,
-- namespace(), other filters) is an error naming the construct.
-- Without a tokenizer_config.json (a llama2.c checkpoint) the template is Llama 2's [INST] form,
-- the one run.c's chat mode uses.
local M = {}

local T = {}
T.__index = T

-- ===================================================================
-- lexer for expressions
-- ===================================================================
local function lex(src, where)
  local toks, i = {}, 1
  while i <= #src do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif c == "'" or c == '"' then
      local j, buf = i + 1, {}
      while true do
        local d = src:sub(j, j)
        if d == "" then error("chat template: unterminated string in " .. where, 0) end
        if d == "\\" then
          local e = src:sub(j + 1, j + 1)
          buf[#buf + 1] = ({ n = "\n", t = "\t", ["\\"] = "\\", ["'"] = "'", ['"'] = '"' })[e] or ("\\" .. e)
          j = j + 2
        elseif d == c then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      toks[#toks + 1] = { k = "str", v = table.concat(buf) }
      i = j + 1
    elseif c:match("%d") then
      local num = src:match("^%d+%.?%d*", i)
      toks[#toks + 1] = { k = "num", v = tonumber(num) }
      i = i + #num
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", i)
      toks[#toks + 1] = { k = "name", v = w }
      i = i + #w
    else
      local two = src:sub(i, i + 1)
      if two == "==" or two == "!=" or two == "<=" or two == ">=" then
        toks[#toks + 1] = { k = "op", v = two }
        i = i + 2
      elseif ("+-*/%~<>()[]{}.,:|="):find(c, 1, true) then
        toks[#toks + 1] = { k = "op", v = c }
        i = i + 1
      else
        error("chat template: unexpected character '" .. c .. "' in " .. where, 0)
      end
    end
  end
  return toks
end

-- ===================================================================
-- expression parser -> closures over an environment
-- ===================================================================
local function truthy(v)
  if v == nil or v == false or v == "" or v == 0 then return false end
  if type(v) == "table" and next(v) == nil and not v.__map then return false end
  return true
end

local function tostr(v)
  if v == nil then return "" end
  if v == true then return "True" elseif v == false then return "False" end
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
  return tostring(v)
end

local function tojson(v)
  local ok, cjson = pcall(require, "cjson")
  if ok then return cjson.encode(v) end
  return tostr(v)
end

local function index(obj, key)
  if type(obj) == "string" and math.type(key) == "integer" then
    if key < 0 then key = #obj + key end
    return obj:sub(key + 1, key + 1)
  end
  if type(obj) ~= "table" then return nil end
  if math.type(key) == "integer" or (type(key) == "number" and key == math.floor(key)) then
    key = math.tointeger(key)
    if key < 0 then key = #obj + key end
    return obj[key + 1]
  end
  return obj[key]
end

local FILTERS = {
  trim = function(v) return (tostr(v):gsub("^%s+", ""):gsub("%s+$", "")) end,
  length = function(v) return type(v) == "string" and #v or type(v) == "table" and #v or 0 end,
  upper = function(v) return tostr(v):upper() end,
  lower = function(v) return tostr(v):lower() end,
  tojson = function(v) return tojson(v) end,
  string = function(v) return tostr(v) end,
}

local METHODS = {
  strip = function(s) return (tostr(s):gsub("^%s+", ""):gsub("%s+$", "")) end,
  lstrip = function(s) return (tostr(s):gsub("^%s+", "")) end,
  rstrip = function(s) return (tostr(s):gsub("%s+$", "")) end,
  startswith = function(s, p) return tostr(s):sub(1, #p) == p end,
  endswith = function(s, p) return p == "" or tostr(s):sub(-#p) == p end,
  upper = function(s) return tostr(s):upper() end,
  lower = function(s) return tostr(s):lower() end,
}

local function parser(toks, where)
  local p = 1
  local function peek(k, v)
    local t = toks[p]
    return t and t.k == k and (v == nil or t.v == v)
  end
  local function accept(k, v)
    if peek(k, v) then
      p = p + 1
      return toks[p - 1]
    end
  end
  local function expect(k, v)
    local t = accept(k, v)
    if not t then
      local got = toks[p] and tostring(toks[p].v) or "end"
      error("chat template: expected " .. (v or k) .. ", got '" .. got .. "' in " .. where, 0)
    end
    return t
  end
  local expr
  local function primary()
    local t = toks[p]
    if not t then error("chat template: expression ends early in " .. where, 0) end
    local node
    if t.k == "str" or t.k == "num" then
      p = p + 1
      local v = t.v
      node = function() return v end
    elseif accept("op", "(") then
      node = expr()
      expect("op", ")")
    elseif accept("op", "[") then
      local items = {}
      if not peek("op", "]") then
        repeat items[#items + 1] = expr() until not accept("op", ",")
      end
      expect("op", "]")
      node = function(env)
        local r = {}
        for i, f in ipairs(items) do r[i] = f(env) end
        return r
      end
    elseif t.k == "name" then
      p = p + 1
      local n = t.v
      if n == "true" or n == "True" then node = function() return true end
      elseif n == "false" or n == "False" then node = function() return false end
      elseif n == "none" or n == "None" then node = function() return nil end
      elseif n == "raise_exception" then
        expect("op", "(")
        local msg = expr()
        expect("op", ")")
        node = function(env) error("chat template: " .. tostr(msg(env)), 0) end
      else
        node = function(env) return env[n] end
      end
    else
      error("chat template: unexpected '" .. tostring(t.v) .. "' in " .. where, 0)
    end
    -- postfix: .name, .method(args), [i], [i:j]
    while true do
      if accept("op", ".") then
        local name = expect("name").v
        if accept("op", "(") then
          local args = {}
          if not peek("op", ")") then
            repeat args[#args + 1] = expr() until not accept("op", ",")
          end
          expect("op", ")")
          local m = METHODS[name]
          if not m then error("chat template: method ." .. name .. "() is not supported", 0) end
          local base = node
          node = function(env)
            local a = {}
            for i, f in ipairs(args) do a[i] = f(env) end
            return m(base(env), table.unpack(a))
          end
        else
          local base = node
          node = function(env) return index(base(env), name) end
        end
      elseif accept("op", "[") then
        local lo, hi, slice
        if not peek("op", ":") then lo = expr() end
        if accept("op", ":") then
          slice = true
          if not peek("op", "]") then hi = expr() end
        end
        expect("op", "]")
        local base = node
        if slice then
          node = function(env)
            local v = base(env) or {}
            local n = #v
            local a = lo and lo(env) or 0
            local b = hi and hi(env) or n
            if a < 0 then a = n + a end
            if b < 0 then b = n + b end
            if type(v) == "string" then return v:sub(a + 1, b) end
            local r = {}
            for i = a + 1, math.min(b, n) do r[#r + 1] = v[i] end
            return r
          end
        else
          node = function(env) return index(base(env), lo(env)) end
        end
      else
        break
      end
    end
    return node
  end
  local function filtered()
    local node = primary()
    while accept("op", "|") do
      local name = expect("name").v
      local f = FILTERS[name]
      if not f then error("chat template: filter '" .. name .. "' is not supported", 0) end
      local base = node
      node = function(env) return f(base(env)) end
    end
    return node
  end
  local function unary()
    if accept("op", "-") then
      local a = unary()
      return function(env) return -a(env) end
    end
    return filtered()
  end
  local function mul()
    local a = unary()
    while peek("op", "*") or peek("op", "/") or peek("op", "%") do
      local op = toks[p].v
      p = p + 1
      local b, l = unary(), a
      a = function(env)
        local x, y = l(env), b(env)
        if op == "*" then return x * y elseif op == "/" then return x / y else return x % y end
      end
    end
    return a
  end
  local function add()
    local a = mul()
    while peek("op", "+") or peek("op", "-") or peek("op", "~") do
      local op = toks[p].v
      p = p + 1
      local b, l = mul(), a
      a = function(env)
        local x, y = l(env), b(env)
        if op == "~" or (op == "+" and (type(x) == "string" or type(y) == "string")) then return tostr(x) .. tostr(y) end
        if op == "+" then return x + y end
        return x - y
      end
    end
    return a
  end
  local function compare()
    local a = add()
    while true do
      local t = toks[p]
      if t and t.k == "op" and (t.v == "==" or t.v == "!=" or t.v == "<" or t.v == ">" or t.v == "<=" or t.v == ">=") then
        p = p + 1
        local op, b, l = t.v, add(), a
        a = function(env)
          local x, y = l(env), b(env)
          if op == "==" then return x == y elseif op == "!=" then return x ~= y
          elseif op == "<" then return x < y elseif op == ">" then return x > y
          elseif op == "<=" then return x <= y else return x >= y end
        end
      elseif peek("name", "in") or (peek("name", "not") and toks[p + 1] and toks[p + 1].v == "in") then
        local neg = accept("name", "not") ~= nil
        p = p + 1
        local b, l = add(), a
        a = function(env)
          local x, y = l(env), b(env)
          local r = false
          if type(y) == "string" then r = y:find(tostr(x), 1, true) ~= nil
          elseif type(y) == "table" then
            if y[x] ~= nil then r = true end
            for _, v in ipairs(y) do if v == x then r = true end end
          end
          return neg ~= r
        end
      elseif accept("name", "is") then
        local neg = accept("name", "not") ~= nil
        local test = expect("name").v
        local l = a
        a = function(env)
          local v = l(env)
          local r
          if test == "defined" then r = v ~= nil
          elseif test == "none" then r = v == nil
          elseif test == "string" then r = type(v) == "string"
          else error("chat template: test 'is " .. test .. "' is not supported", 0) end
          return neg ~= r
        end
      else
        break
      end
    end
    return a
  end
  local function lnot()
    if accept("name", "not") then
      local a = lnot()
      return function(env) return not truthy(a(env)) end
    end
    return compare()
  end
  local function land()
    local a = lnot()
    while accept("name", "and") do
      local b, l = lnot(), a
      a = function(env) local x = l(env); if not truthy(x) then return x end return b(env) end
    end
    return a
  end
  local function lor()
    local a = land()
    while accept("name", "or") do
      local b, l = land(), a
      a = function(env) local x = l(env); if truthy(x) then return x end return b(env) end
    end
    return a
  end
  expr = function()
    local a = lor()
    if accept("name", "if") then
      local c = lor()
      local b = function() return "" end
      if accept("name", "else") then b = expr() end
      local l = a
      a = function(env) if truthy(c(env)) then return l(env) end return b(env) end
    end
    return a
  end
  return { expr = expr, accept = accept, expect = expect, peek = peek, done = function() return p > #toks end }
end

local function compile_expr(src, where)
  local P = parser(lex(src, where), where)
  local e = P.expr()
  if not P.done() then error("chat template: unexpected text after the expression in " .. where, 0) end
  return e
end

-- ===================================================================
-- template: split into text / {{ }} / {% %}, then a tree of statements
-- ===================================================================
local function split(src)
  local parts, i = {}, 1
  while i <= #src do
    local s, e, kind = src:find("{([{%%#])", i)
    if not s then
      parts[#parts + 1] = { k = "text", v = src:sub(i) }
      break
    end
    local close = ({ ["{"] = "}}", ["%"] = "%}", ["#"] = "#}" })[kind]
    local cs, ce = src:find(close, e + 1, true)
    if not cs then error("chat template: unclosed {" .. kind, 0) end
    local inner = src:sub(e + 1, cs - 1)
    local lstrip, rstrip = inner:sub(1, 1) == "-", inner:sub(-1) == "-"
    if lstrip then inner = inner:sub(2) end
    if rstrip then inner = inner:sub(1, -2) end
    parts[#parts + 1] = { k = "text", v = src:sub(i, s - 1) }
    if kind ~= "#" then parts[#parts + 1] = { k = kind == "{" and "out" or "stmt", v = inner, l = lstrip, r = rstrip } end
    if kind == "#" then parts[#parts].r = rstrip; parts[#parts].l2 = lstrip end
    i = ce + 1
  end
  -- Hugging Face renders with trim_blocks and lstrip_blocks: the newline right after a block tag
  -- goes, and so do spaces before a block tag that starts its line
  for j, pt in ipairs(parts) do
    if pt.k == "stmt" then
      local nx, pv = parts[j + 1], parts[j - 1]
      if nx and nx.k == "text" then nx.v = nx.v:gsub("^\n", "", 1) end
      if pv and pv.k == "text" then
        local head, tail = pv.v:match("^(.*\n)([ \t]*)$")
        if head then pv.v = head elseif pv.v:match("^[ \t]*$") and j == 2 then pv.v = "" end
      end
    end
  end
  -- whitespace control on neighbouring text
  for j, pt in ipairs(parts) do
    if pt.k ~= "text" then
      if pt.l and parts[j - 1] and parts[j - 1].k == "text" then parts[j - 1].v = parts[j - 1].v:gsub("%s+$", "") end
      if pt.r and parts[j + 1] and parts[j + 1].k == "text" then parts[j + 1].v = parts[j + 1].v:gsub("^%s+", "") end
    end
  end
  return parts
end

local function build(parts)
  local pos = 1
  local function block(terminators)
    local body = {}
    while pos <= #parts do
      local pt = parts[pos]
      if pt.k == "text" then
        if pt.v ~= "" then body[#body + 1] = { k = "text", v = pt.v } end
        pos = pos + 1
      elseif pt.k == "out" then
        body[#body + 1] = { k = "out", e = compile_expr(pt.v, "{{" .. pt.v .. "}}") }
        pos = pos + 1
      else
        local word = pt.v:match("^%s*(%a+)")
        if terminators[word] then return body, word, pt end
        pos = pos + 1
        if word == "if" then
          local node = { k = "if", branches = {} }
          local cond = pt.v:match("^%s*if%s+(.*)$")
          while true do
            local b, term, tpt = block({ elif = true, ["else"] = true, endif = true })
            node.branches[#node.branches + 1] = { c = cond and compile_expr(cond, "{% if %}"), body = b }
            if not term then error("chat template: {% if %} without {% endif %}", 0) end
            pos = pos + 1
            if term == "endif" then break end
            cond = term == "elif" and tpt.v:match("^%s*elif%s+(.*)$") or nil
          end
          body[#body + 1] = node
        elseif word == "for" then
          local var, src = pt.v:match("^%s*for%s+([%w_]+)%s+in%s+(.-)%s*$")
          if not var then error("chat template: unsupported for loop '" .. pt.v .. "'", 0) end
          local b, term = block({ endfor = true })
          if term ~= "endfor" then error("chat template: {% for %} without {% endfor %}", 0) end
          pos = pos + 1
          body[#body + 1] = { k = "for", var = var, e = compile_expr(src, "{% for %}"), body = b }
        elseif word == "set" then
          local name, src = pt.v:match("^%s*set%s+([%w_]+)%s*=%s*(.-)%s*$")
          if not name then error("chat template: unsupported set '" .. pt.v .. "'", 0) end
          body[#body + 1] = { k = "set", name = name, e = compile_expr(src, "{% set %}") }
        else
          error("chat template: {% " .. tostring(word) .. " %} is not supported", 0)
        end
      end
    end
    return body
  end
  local body, term = block({})
  if term then error("chat template: unexpected {% " .. term .. " %}", 0) end
  return body
end

local function run(body, env, out)
  for _, n in ipairs(body) do
    if n.k == "text" then out[#out + 1] = n.v
    elseif n.k == "out" then out[#out + 1] = tostr(n.e(env))
    elseif n.k == "set" then env[n.name] = n.e(env)
    elseif n.k == "if" then
      for _, b in ipairs(n.branches) do
        if not b.c or truthy(b.c(env)) then
          run(b.body, env, out)
          break
        end
      end
    elseif n.k == "for" then
      local list = n.e(env) or {}
      local len = #list
      local outer = env.loop
      for i, v in ipairs(list) do
        env[n.var] = v
        env.loop = { index = i, index0 = i - 1, first = i == 1, last = i == len, length = len }
        run(n.body, env, out)
      end
      env.loop = outer
    end
  end
end

--- chat.compile(source) -> template; template:render(messages, add_generation_prompt [, vars])
function M.compile(src, vars)
  local self = setmetatable({ body = build(split(src)), vars = vars or {} }, T)
  return self
end

function T:render(messages, add_generation_prompt, vars)
  local env = setmetatable({}, { __index = function(_, k)
    if vars and vars[k] ~= nil then return vars[k] end
    return self.vars[k]
  end })
  env.messages = messages
  env.add_generation_prompt = add_generation_prompt and true or false
  local out = {}
  run(self.body, env, out)
  return table.concat(out)
end

-- Llama 2's chat form (run.c's chat mode), for checkpoints without a tokenizer_config.json.
M.LLAMA2 = "{% for m in messages %}{% if m.role == 'system' %}{% set sys = m.content %}" ..
  "{% elif m.role == 'user' %}{% if sys %}[INST] <<SYS>>\n{{ sys }}\n<</SYS>>\n\n{{ m.content }} [/INST]" ..
  "{% set sys = none %}{% else %}[INST] {{ m.content }} [/INST]{% endif %}" ..
  "{% else %}{{ m.content }}{% endif %}{% endfor %}"

--- chat.load(model_path, model) -> template (with .stops), or nil, message.
function M.load(path, model)
  local dir = path
  local f = io.open(path .. "/tokenizer_config.json", "rb")
  local src, vars, stops = nil, {}, {}
  if f then
    local text = f:read("a")
    f:close()
    local ok, cjson = pcall(require, "cjson")
    if not ok then return nil, "reading tokenizer_config.json needs lua-cjson" end
    local okj, cfg = pcall(cjson.decode, text)
    if not okj then return nil, dir .. "/tokenizer_config.json: " .. tostring(cfg) end
    src = cfg.chat_template
    if type(src) == "table" then -- a list of {name, template}
      for _, t in ipairs(src) do if t.name == "default" then src = t.template end end
      if type(src) == "table" then src = src[1] and src[1].template end
    end
    local function tokstr(v) if type(v) == "table" then return v.content end return v end
    vars.bos_token = tokstr(cfg.bos_token) or ""
    vars.eos_token = tokstr(cfg.eos_token) or ""
    if type(vars.eos_token) == "string" and vars.eos_token ~= "" then stops[#stops + 1] = vars.eos_token end
    if type(src) ~= "string" then return nil, dir .. "/tokenizer_config.json has no chat_template" end
    if src:find("<|im_end|>", 1, true) then stops[#stops + 1] = "<|im_end|>" end
  else
    src = M.LLAMA2
  end
  local ok, t = pcall(M.compile, src, vars)
  if not ok then return nil, tostring(t) end
  t.stops = stops
  return t
end

return M
