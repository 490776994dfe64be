"""The composition root: settings -> engines, the front door, protocol servers, metrics,
follower front ends; `seq2seq-serve` starts it."""
