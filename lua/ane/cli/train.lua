--- `ane train ...`: the training program (the same as `ane examples/train.lua ...`; see
-- docs/training.md for the flags).
return function(args)
  return require("ane.train").main(args, { self_argv = { arg and arg[-1] or "ane", "train" } })
end
