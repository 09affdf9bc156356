-- probe_classes: every _ANE* and MLE5* class the runtime knows, with class and instance methods,
-- properties, ivars and protocols and their type encodings in words (ane-private-api.md 9),
-- through ane.objc. The JSON is sorted and stable: diff two macOS versions' dumps directly.
--   ane scripts/probe_classes.lua [--json FILE] [--prefix _ANE,MLE5] [--quick]
-- Skips (exit 0, with the reason, in the table and the JSON) where there is no Objective-C
-- runtime or no class matches. On Linux the classes are the stand-in framework's.
local ane = require "ane"
local D = require "ane.objcdump"

local opts = { prefixes = { "_ANE", "MLE5" } }
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--json" and arg[i + 1] then opts.json = arg[i + 1]; i = i + 2
  elseif a == "--prefix" and arg[i + 1] then
    opts.prefixes = {}
    for p in arg[i + 1]:gmatch("[^,]+") do opts.prefixes[#opts.prefixes + 1] = p end
    i = i + 2
  elseif a == "--quick" then opts.quick = true; i = i + 1
  else error(("probe_classes: unknown argument '%s'\nusage: ane scripts/probe_classes.lua "
    .. "[--json FILE] [--prefix P1,P2] [--quick]"):format(a), 0) end
end

local result = { probe = "classes", prefixes = opts.prefixes, notes = {} }
local function note(s) result.notes[#result.notes + 1] = s; print("  note: " .. s) end
local function finish()
  if opts.json then
    local f = assert(io.open(opts.json, "w"))
    f:write(D.json(result))
    f:close()
    print("  json: " .. opts.json)
  end
  os.exit(0)
end
local function skip(why)
  print("probe classes: skipped: " .. why)
  result.skipped = why
  finish()
end

local objc = ane.objc
local ok, why = objc.available()
if not ok then skip("no Objective-C runtime: " .. tostring(why)) end
local fw, fwhy = objc.framework()
result.framework = fw or nil
if not fw then note("the ANE framework did not load: " .. tostring(fwhy)) end
if fw and not fw:find("^/System/") then
  note("classes of this project's stand-in framework (Linux), not Apple's")
end
-- MLE5* live in CoreML (macOS only)
local coreml = "/System/Library/Frameworks/CoreML.framework/CoreML"
if io.open(coreml, "r") then objc.load(coreml) end
result.images = objc.images()

result.classes = {}
result.absent = {}
local rows = {}
for _, prefix in ipairs(opts.prefixes) do
  local names = objc.classes(prefix)
  if #names == 0 then
    result.absent[#result.absent + 1] = prefix
    note(("no %s* class in the loaded images%s"):format(prefix,
      prefix == "MLE5" and " (CoreML's E5 classes exist only on macOS)" or ""))
  end
  for _, name in ipairs(names) do
    local d = D.class(assert(objc.class(name)))
    result.classes[name] = d
    rows[#rows + 1] = d
  end
end
if #rows == 0 then skip("no class matches " .. table.concat(opts.prefixes, ", ")) end

print(("probe classes: %d classes (%s)"):format(#rows, table.concat(opts.prefixes, ", ")))
print(("%-40s %-24s %6s %6s %6s %6s"):format("class", "superclass", "+meth", "-meth", "props", "ivars"))
for _, d in ipairs(rows) do
  print(("%-40s %-24s %6d %6d %6d %6d"):format(d.name, d.superclass or "-", #d.class_methods,
    #d.instance_methods, #d.properties, #d.ivars))
end
finish()
