-- MIL printer: canonical text (mil-reference.md 4.3) and the round trip parse(print(p)) == p
-- over every program of the corpus in spec/fixtures/mil/.
local ane = require "ane"
local H = require "helpers"
local lfs = require "lfs"

local dir = os.getenv("ANE_ROOT") .. "/spec/fixtures/mil"
local corpus = {}
for f in lfs.dir(dir) do
  if f:match("%.mil$") then corpus[#corpus + 1] = f end
end
table.sort(corpus)

describe("mil printer", function()
  it("has a corpus", function()
    assert.is_true(#corpus >= 11)
  end)

  for _, name in ipairs(corpus) do
    it("type-checks " .. name .. " (the corpus is valid MIL)", function()
      local p = ane.mil_parse(assert(H.read(dir .. "/" .. name)), name)
      p:check()
    end)

    it("round-trips " .. name, function()
      local p = ane.mil_parse(assert(H.read(dir .. "/" .. name)), name)
      local text = p:text()
      local q = ane.mil_parse(text, "printed")
      local eq, why = p:equal(q)
      assert.is_true(eq, why)
      -- canonical text is a fixed point
      assert.equal(text, q:text())
      -- and the other dialect round-trips too (same program apart from the version)
      local other = p:version() == "1.0" and "1.3" or "1.0"
      local own = p:version() == "1.0" and "1.0" or "1.3"
      local r = ane.mil_parse(p:text { dialect = other })
      local function body(t) return (t:gsub("^program%([%d.]+%)\n", "")) end
      assert.equal(body(text), body(r:text { dialect = own }))
    end)
  end

  it("lays out programs like the reference (4/8 spaces, sorted inputs and attributes)", function()
    local p = ane.mil_parse([[program(1.3) { func main<ios18>(tensor<fp16,[1,2]> x) {
      tensor<fp16,[1,2]> y = add(y=x, x=x)[val=int32(1), name=string("n")];
      tensor<fp16,[1,2]> z = relu(x=y); } -> (z, y); }]])
    assert.equal([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 2]> x) {
        tensor<fp16, [1, 2]> y = add(x = x, y = x)[name = string("n"), val = int32(1)];
        tensor<fp16, [1, 2]> z = relu(x = y)[name = string("z")];
    } -> (z, y);
}
]], p:text())
  end)

  it("prints the V2 dialect with tensor<T, []> scalars everywhere", function()
    local p = ane.mil_parse([[program(1.3) { func main<ios16>(fp16 x) {
      bool k = const()[name = string("k"), val = bool(true)];
      fp16 y = mul(x = x, y = fp16(2))[name = string("y")]; } -> (y); }]])
    assert.equal([[
program(1.0)
{
    func main<ios16>(tensor<fp16, []> x) {
        tensor<bool, []> k = const()[name = tensor<string, []>("k"), val = tensor<bool, []>(true)];
        tensor<fp16, []> y = mul(x = x, y = tensor<fp16, []>(0x1p+1))[name = tensor<string, []>("y")];
    } -> (y);
}
]], p:text { dialect = "1.0" })
  end)

  it("writes floats as minimal lowercase hex with a signed exponent", function()
    local p = ane.mil_parse([[program(1.3) { func main<ios18>() {
      tensor<fp32, [6]> c = const()[name = string("c"), val = tensor<fp32, [6]>([1, -0.5, 0.1, 3e38, 0, -0.0])];
    } -> (c); }]])
    -- (3e38 as fp32 is 0x1.c363ccp+127 per NumPy)
    assert.matches("%[0x1p%+0, %-0x1p%-1, 0x1%.99999ap%-4, 0x1%.c363ccp%+127, 0x0p%+0, %-0x0p%+0%]", p:text())
  end)

  it("rejects a bad dialect option", function()
    local p = ane.mil_parse("program(1.3) { func main<ios18>() {} -> (); }")
    assert.has_error(function() p:text { dialect = "2.0" } end, "bad argument #1 to 'text' (dialect must be \"1.0\" or \"1.3\")")
    assert.has_error(function() p:text { bogus = 1 } end)
  end)
end)
