seq2seq translate "Lua bindings for Pure Data" --to fr --n-best 3
seq2seq answer "Who maintains xfonts-terminus?" --context docs/examples/package.txt
seq2seq summarize "$(cat docs/examples/long.txt)"
seq2seq models
