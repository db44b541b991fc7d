module hangup-bench/gopeer

go 1.19
