package main

import "fmt"

func sum(values []int) int {
	total := 0
	for _, v := range values {
		<FILL>
	}
	return total
}

func main() {
	fmt.Println(sum([]int{1, 2, 3}))
}
