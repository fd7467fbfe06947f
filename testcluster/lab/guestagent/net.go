package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

// serveEcho echoes every byte back, so a TCP connection opened before a
// migration can be shown to survive it.
func serveEcho(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Printf("hm-agent: echo: %v", err)
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("hm-agent: echo accept: %v", err)
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

func serveHTTP(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "host=%s counter=%d dirtied_mib=%d\n", host, counter.Load(), dirtied.Load()*pageSize>>20)
	})
	mux.HandleFunc("/disk/write", diskWrite)
	mux.HandleFunc("/disk/read", diskRead)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Printf("hm-agent: http: %v", err)
	}
}
