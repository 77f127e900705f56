module github.com/pandoplatform/pando

go 1.26.8
