-- ane.objc, the Objective-C bridge, against GCC's runtime: the stand-in framework provides the
-- root class and Foundation, the test library (spec/support/objctest) the classes below.
local H = require "helpers"
local ane = require "ane"
local objc = ane.objc
local st = require "ane_standin"

local testlib = H.build .. "/objctest/libOTClasses.so"

local function live(cls)
  collectgarbage(); collectgarbage()
  return st.live(cls)
end

local function bad_events()
  local bad = {}
  for _, e in ipairs(st.events()) do if e:match("^error%.") then bad[#bad + 1] = e end end
  return bad
end

describe("ane.objc", function()
  local T, Thing
  setup(function()
    assert(objc.available())
    assert(objc.framework())
    assert(objc.load(testlib))
    T = assert(objc.class("OTTypes"))
    Thing = assert(objc.class("OTThing"))
  end)
  before_each(function() st.reset() end)
  after_each(function() assert.are.same({}, bad_events()) end)

  describe("introspection", function()
    it("finds classes by name and prefix, and says why a class is absent", function()
      assert.are.equal("OTTypes", T:name())
      assert.is_true(T:is_class())
      assert.are.equal("NSObject", T:superclass():name())
      assert.is_nil(objc.class("NSObject"):superclass())
      local c, why = objc.class("NoSuchClass")
      assert.is_nil(c)
      assert.matches("no class named 'NoSuchClass'", why)
      assert.are.same({ "OTException", "OTThing", "OTTypes" }, objc.classes("OT"))
      local ane_classes = objc.classes("_ANE")
      assert.is_true(#ane_classes >= 5)
      for i = 2, #ane_classes do assert.is_true(ane_classes[i - 1] < ane_classes[i]) end
    end)

    it("lists methods with their encodings in words, sorted", function()
      local byname = {}
      local list = T:methods { class = true }
      for i, m in ipairs(list) do
        byname[m.name] = m
        assert.is_true(m.class)
        if i > 1 then assert.is_true(list[i - 1].name < m.name) end
      end
      assert.are.same({}, T:methods()) -- no instance methods of its own
      local d = byname["divide:by:remainder:error:"]
      assert.are.equal("B40@0:8q16q24^q32^@40", d.encoding)
      assert.are.equal("BOOL (long long, long long, long long *, NSError **)", d.type)
      assert.are.equal("CGSize (CGSize)", byname["echoSize:"].type)
      assert.are.equal("const char * (const char *)", byname["echoString:"].type)
      assert.are.equal("double (int, double, char, float, long long, short, unsigned int, double)",
        byname["mixInt:double:char:float:longLong:short:unsignedInt:double:"].type)
      local im = {}
      for _, m in ipairs(Thing:methods()) do im[m.name] = m.type end
      assert.are.equal("id (long long)", im["initWithValue:"])
      assert.are.equal("long long ()", im["value"])
      assert.has_error(function() Thing:methods { klass = true } end)
    end)

    it("lists ivars, protocols and properties", function()
      local iv = Thing:ivars()
      assert.are.same({ name = "_value", encoding = "q", type = "long long", offset = iv[1].offset }, iv[1])
      assert.are.same({ { name = "OTProbing" } }, Thing:protocols())
      -- GCC's runtime keeps no property lists for classes (docs/objc.md): empty, not an error
      assert.are.same({}, Thing:properties())
    end)

    it("decodes encodings on their own", function()
      assert.are.equal("BOOL (unsigned int, id, id, NSError **)",
        objc.decode("B44@0:8I16@20@28^@36", "evaluateWithQoS:options:request:error:"))
      assert.are.equal("IOSurfaceRef", objc.decode("^{__IOSurface=}"))
      assert.are.equal("ANEBufferStruct[128]", objc.decode("[128{ANEBufferStruct=^{__IOSurface}IiiI}]"))
      assert.are.equal("NSString *", objc.decode('@"NSString"'))
      assert.are.equal("block", objc.decode("@?"))
      assert.are.equal("const char *", objc.decode("r*"))
      assert.are.equal("id *", objc.decode("^@"))
      assert.are.equal("void (id *)", objc.decode("v24@0:8^@16", "take:"))
      assert.are.equal("unsigned char **", objc.decode("^^C"))
      assert.are.equal("struct {int, CGSize}", objc.decode("{?=i{CGSize=dd}}"))
      assert.are.equal("union U", objc.decode("(U=if)"))
      assert.are.equal("bitfield:3", objc.decode("b3"))
      assert.are.equal("function pointer", objc.decode("^?"))
      assert.are.equal("id<NSCopying>", objc.decode('@"<NSCopying>"'))
      assert.are.equal("oneway void (bycopy id)", objc.decode("Vv24@0:8O@16"))
      assert.are.equal("malformed encoding {CGSize=dd", objc.decode("{CGSize=dd", "x"))
      assert.are.equal("NSString *, readonly, copy, nonatomic, ivar=_name",
        objc.decode_property('T@"NSString",R,C,N,V_name'))
      assert.are.equal("unsigned int, getter=isOn, setter=turn:",
        objc.decode_property("TI,GisOn,Sturn:"))
    end)
  end)

  describe("calls", function()
    it("converts every integer width both ways, with range checks", function()
      local cases = {
        { "echoChar:", -128, 127 }, { "echoUChar:", 0, 255 }, { "echoShort:", -32768, 32767 },
        { "echoUShort:", 0, 65535 }, { "echoInt:", -2147483648, 2147483647 },
        { "echoUInt:", 0, 4294967295 }, { "echoLong:", math.mininteger, math.maxinteger },
        { "echoULong:", 0, math.maxinteger }, { "echoLongLong:", math.mininteger, math.maxinteger },
        { "echoULongLong:", 0, math.maxinteger },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(c[2], T:call(c[1], c[2]), c[1])
        assert.are.equal(c[3], T:call(c[1], c[3]), c[1])
        assert.are.equal(7, T:call(c[1], 7.0), c[1]) -- an integral float converts
      end
      assert.has_error(function() T:call("echoChar:", 128) end,
        "objc: +[OTTypes echoChar:] argument 1: 128 out of range for char")
      assert.has_error(function() T:call("echoUInt:", -1) end)
      assert.has_error(function() T:call("echoInt:", 1.5) end,
        "objc: +[OTTypes echoInt:] argument 1: expected an integer (int), got 1.5")
      -- unsigned 64-bit values above 2^63 go in as floats and come back wrapped: Lua integers are signed
      assert.are.equal(-2048, T:call("echoULongLong:", 2.0 ^ 64 - 2048))
    end)

    it("converts floats, doubles, BOOL, char *, SEL, Class, id and pointers", function()
      assert.are.equal(0.5, T:call("echoFloat:", 0.5))
      assert.are.equal(1 / 3, T:call("echoDouble:", 1 / 3))
      assert.is_true(T:call("echoBool:", true))
      assert.is_false(T:call("echoBool:", false))
      assert.are.equal("héllo", T:call("echoString:", "héllo"))
      assert.is_nil(T:call("echoString:", nil))
      assert.are.equal("hello", T:call("greeting"))
      assert.is_nil(T:call("nullString"))
      assert.are.equal("a:b:", T:call("echoSel:", "a:b:"))
      assert.are.equal(Thing, T:call("echoClass:", "OTThing"))
      assert.are.equal(Thing, T:call("echoClass:", Thing))
      assert.are.equal(T, T:call("echoId:", T))
      assert.is_nil(T:call("echoId:", nil))
      local p = T:ptr()
      assert.are.equal(p, T:call("echoPointer:", p))
      assert.is_nil(T:call("echoPointer:", objc.null))
      assert.is_nil(T:call("nothing"))
    end)

    it("passes a tensor's data as a pointer", function()
      local t = ane.zeros({ 4 }, "uint8")
      T:call("fill:length:", t, 4)
      assert.are.same({ 1, 2, 3, 4 }, t:to_table())
      assert.are.equal(1, T:call("firstByte:", t))
      assert.are.equal(65, T:call("firstByte:", "A"))
    end)

    it("passes and returns structs by value", function()
      assert.are.same({ width = 3.0, height = 4.5 }, T:call("echoSize:", { width = 3, height = 4.5 }))
      assert.are.same({ width = 1.0, height = 2.0 }, T:call("echoSize:", { 1, 2 }))
      assert.are.same({ width = 5.0, height = 6.0 }, T:call("sizeWithWidth:height:", 5, 6))
      assert.are.same({ location = 2, length = 5 }, T:call("echoRange:", { location = 2, length = 5 }))
      assert.are.equal(7, T:call("endOfRange:", { 2, 5 }))
      assert.has_error(function() T:call("echoSize:", { width = 1 }) end,
        "objc: +[OTTypes echoSize:] argument 1: struct field height missing")
    end)

    it("calls with many and mixed register arguments", function()
      assert.are.equal(1 + 2.5 + 3 + 0.5 + 10 - 2 + 7 + 0.25,
        T:call("mixInt:double:char:float:longLong:short:unsignedInt:double:", 1, 2.5, 3, 0.5, 10, -2, 7, 0.25))
      assert.are.equal(45, T:call("sum:b:c:d:e:f:g:h:i:", 1, 1, 1, 1, 1, 1, 1, 1, 1))
      assert.are.equal(9 * 9, objc.send("OTTypes", "sum:b:c:d:e:f:g:h:i:", 0, 0, 0, 0, 0, 0, 0, 0, 9))
    end)

    it("returns out-parameters as extra results", function()
      local ok, rem, err = T:call("divide:by:remainder:error:", 7, 2)
      assert.is_true(ok); assert.are.equal(1, rem); assert.is_nil(err)
      ok, rem, err = T:call("divide:by:remainder:error:", 7, 0, nil, nil)
      assert.is_false(ok)
      assert.are.equal("OTDomain", err:call("domain"):lua())
      assert.are.equal(7, err:call("code"))
      assert.matches("Code=7", tostring(err))
      assert.is_nil(select(2, T:call("divide:by:remainder:error:", 7, 2, objc.null, objc.null)))
      local none, d, u = T:call("outDouble:unsigned:")
      assert.is_nil(none); assert.are.equal(2.5, d); assert.are.equal(7, u)
    end)

    it("names the selector and the argument position in every refusal", function()
      assert.has_error(function() T:call("noSuch:", 1) end,
        "objc: +[OTTypes noSuch:]: the class does not respond to noSuch:")
      assert.has_error(function() T:call("echoInt:", 1, 2) end,
        "objc: +[OTTypes echoInt:] takes 1 argument (int (int)), got 2")
      assert.has_error(function() T:call("echoInt:") end)
      assert.has_error(function() T:call("echoInt:", "x") end,
        "objc: +[OTTypes echoInt:] argument 1: expected an integer (int), got a string")
      assert.has_error(function() T:call("echoBool:", "yes") end,
        "objc: +[OTTypes echoBool:] argument 1: expected a boolean (BOOL), got string")
      assert.has_error(function() T:call("echoClass:", "NoSuch") end,
        "objc: +[OTTypes echoClass:] argument 1: no class named 'NoSuch'")
      assert.has_error(function() T:call("echoId:", function() end) end,
        "objc: +[OTTypes echoId:] argument 1: cannot convert to id: function has no Foundation value")
      assert.has_error(function() T:call("takeLongDouble:", 1) end,
        "objc: +[OTTypes takeLongDouble:] argument 1: unsupported type long double (encoding D)")
      assert.has_error(function() T:call("takeUnion:", {}) end)
      assert.has_error(function() T:call("logFormat:", "x") end,
        "objc: +[OTTypes logFormat:] is variadic; the bridge cannot call variadic methods (build the value another way, e.g. objc.ns)")
      assert.has_error(function() objc.send(nil, "foo") end, "objc: message 'foo' sent to nil")
      assert.has_error(function() objc.send("NoSuchClass", "foo") end)
    end)

    it("turns Objective-C exceptions into Lua errors with name and reason", function()
      assert.has_error(function() T:call("raise:reason:", "NSInvalidArgumentException", "bad thing") end,
        "objc: +[OTTypes raise:reason:]: Objective-C exception NSInvalidArgumentException (OTException): bad thing")
      assert.has_error(function() T:call("raiseString") end,
        "objc: +[OTTypes raiseString]: Objective-C exception NSString: a plain string")
      -- an exception the callee catches itself is none of the bridge's business
      assert.are.equal(1, T:call("catchInside"))
      -- and the bridge still works afterwards
      assert.are.equal(3, T:call("echoInt:", 3))
      assert.are.equal(0, live("OTException"))
    end)
  end)

  describe("Foundation values", function()
    it("round-trips strings, numbers, booleans, arrays, dictionaries and tensors", function()
      assert.are.equal("NSString", objc.ns("hi"):name())
      assert.are.equal("hi", objc.ns("hi"):lua())
      assert.are.equal(42, objc.ns(42):lua())
      assert.are.equal(2.5, objc.ns(2.5):lua())
      assert.are.equal(true, objc.ns(true):lua())
      local v = objc.ns { 1, "two", { k = false } }
      assert.are.equal("NSArray", v:name())
      assert.are.same({ 1, "two", { k = false } }, v:lua())
      assert.are.same({ a = 1, b = "x" }, objc.ns { a = 1, b = "x" }:lua())
      assert.are.equal("NSDictionary", objc.ns {}:name()) -- @{}: the usual options argument
      assert.are.equal("NSArray", objc.array {}:name())
      assert.are.same({}, objc.array {}:lua())
      assert.are.equal("NSDictionary", objc.dict { "a" }:name()) -- keys 1..n become NSNumbers
      assert.has_error(function() objc.array { a = 1 } end)
      local t = ane.from_table({ 7, 8, 9 }, "uint8")
      local d = objc.ns(t)
      assert.are.equal("NSData", d:name())
      assert.are.equal("\7\8\9", d:lua())
      assert.are.equal("hi", tostring(objc.ns("hi")))
      assert.are.equal(Thing, Thing:lua()) -- not a value type: the object itself
      assert.has_error(function() objc.ns(print) end)
      assert.has_error(function() objc.ns("a\0b") end)
      -- Lua values convert on the way in to id arguments
      assert.are.equal("auto", T:call("echoId:", "auto"):lua())
    end)
  end)

  describe("lifetimes", function()
    it("releases every object exactly once", function()
      assert.are.equal(0, live("OTThing"))
      do
        local a = Thing:call("alloc")                 -- +1, not retained again
        local b = a:call("initWithValue:", 5)          -- init consumes its receiver, returns +1
        assert.are.equal(a, b)
        assert.are.equal(1, live("OTThing"))
        assert.are.equal(2, b:call("retainCount"))     -- a's reference and b's
        local c = b:call("copy")                       -- +1
        local m = b:call("mutableCopy")                -- +1
        local n = Thing:call("newThing")               -- +1
        local auto = Thing:call("thing")               -- +0 autoreleased, retained by the bridge
        assert.are.equal(1, auto:call("retainCount"))  -- the pool drained after the call
        local same = b:call("same")                    -- +0, retained
        assert.are.equal(3, b:call("retainCount"))
        assert.are.equal(5, live("OTThing"))
        same:close(); same:close()                     -- close is idempotent
        assert.are.equal("objc.id (closed)", tostring(same))
        assert.has_error(function() same:call("value") end)
        local _, _, err = T:call("divide:by:remainder:error:", 1, 0)
        assert.are.equal(1, err:call("retainCount"))
        a, b, c, m, n, auto, err = nil
      end
      assert.are.equal(0, live("OTThing"))
      assert.are.equal(0, live("NSError"))
    end)

    it("releases at the end of a to-be-closed scope", function()
      do
        local t <close> = Thing:call("newThing")
        assert.are.equal(1, st.live("OTThing"))
      end
      assert.are.equal(0, st.live("OTThing"))
    end)

    it("drains objc.autoreleasepool after the function, even when it raises", function()
      local r = objc.autoreleasepool(function(x) return x + 1, "b" end, 1)
      assert.are.equal(2, r)
      assert.has_error(function() objc.autoreleasepool(function() error("inner") end) end)
      assert.are.equal(0, live("OTThing"))
    end)
  end)

  it("reaches the stand-in's ANE classes", function()
    local M = assert(objc.class("_ANEInMemoryModel"))
    local names = {}
    for _, m in ipairs(M:methods()) do names[m.name] = m.type end
    assert.are.equal("BOOL (unsigned int, id, NSError **)", names["compileWithQoS:options:error:"])
  end)
end)
