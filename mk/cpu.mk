# mk/cpu.mk - the CPU backend's loops are built with -O3 so GCC/Clang vectorise them (at -O2 GCC
# only vectorises with its "very cheap" cost model). -fno-math-errno lets sqrtf inline, -fno-trapping-math lets selects vectorise; neither
# flag changes IEEE results (no -ffast-math).
$(BUILD)/obj/runtime/backend/cpu/%.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math
