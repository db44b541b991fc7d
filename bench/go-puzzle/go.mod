module hangup/go-puzzle

go 1.19
