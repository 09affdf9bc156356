-- The stand-in framework's event log is bounded (issue 11): a ring of recent events plus a count
-- per kind, so a long run on the stand-in does not grow without limit.
local ane = require "ane"

local ok_st, st = pcall(require, "ane_standin")
local usable = false
if ok_st then
  for _, b in ipairs(ane.backends()) do usable = usable or (b.name == "ane" and b.available) end
end

describe("the stand-in's event log", function()
  it("keeps the last 8192 events and counts every kind since reset", function()
    if not usable then
      pending("the ane backend on the stand-in is not available here")
      return
    end
    st.reset()
    local k = ane.compile([[
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 16, 1, 16]> x) {
        tensor<fp16, [1, 16, 1, 16]> y = relu(x = x)[name = string("y")];
    } -> (y);
}
]], { backend = "ane" })
    k:load()
    local x = k:new_input(1)
    local y = k:new_output(1)
    local n = 9000
    for _ = 1, n do k:eval({ x }, { y }) end
    local c = st.counts()
    assert.is_true(c.total >= n, tostring(c.total))
    assert.equal(8192, c.kept) -- the ring wrapped
    assert.equal(c.kept, #st.events())
    local sum = 0
    for _, v in pairs(c.kinds) do sum = sum + v end
    assert.equal(c.total, sum)
    -- the ring holds the most recent events: the last one recorded is the last one read
    local evs = st.events()
    assert.is_string(evs[#evs])
    k:close()
    st.reset()
    assert.same({ total = 0, kept = 0, kinds = {} }, st.counts())
  end)
end)
