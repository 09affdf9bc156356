# mk/optim.mk - runtime/nn/adamw.c is a memory-bound loop over every parameter: -O3 and
# -fno-math-errno (sqrtf inline) let it vectorise, as the CPU backend's loops do (mk/cpu.mk).
$(BUILD)/obj/runtime/nn/adamw.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math
