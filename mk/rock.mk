# rock.mk - the two targets ane-dev-1.rockspec (build type "make") runs under `luarocks make`:
#   make rock                              builds $(BUILD)/lua/ane/core.so, as `make` does
#   make rock-install LUADIR=... LIBDIR=... installs lua/ane/** into LUADIR and core.so into
#                                          LIBDIR/ane (the rock's directories, which LuaRocks then
#                                          deploys to TREE/share/lua/5.4 and TREE/lib/lua/5.4)
# BUILD and SANITIZE come from the environment like any make variable, so a rock can reuse the
# objects of an existing build (spec/luarocks_spec.sh does).
.PHONY: rock rock-install
rock: $(BUILD)/lua/ane/core.so

rock-install: rock
	@test -n "$(LUADIR)" && test -n "$(LIBDIR)" || { echo "rock-install needs LUADIR and LIBDIR (luarocks passes them)"; exit 1; }
	cd lua && for f in $$(find ane -name '*.lua' | sort); do \
	  install -d "$(LUADIR)/$$(dirname $$f)" && install -m 644 "$$f" "$(LUADIR)/$$f" || exit 1; done
	install -d "$(LIBDIR)/ane"
	install -m 755 $(BUILD)/lua/ane/core.so "$(LIBDIR)/ane/core.so"
