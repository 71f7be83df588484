#!/usr/bin/env python3
"""Paired summary of order_ablation.jsonl: aisec own shuffle minus torch orders, per metric; then per seed PGD-10 / clean."""
import json, math, sys
rows=[json.loads(l) for l in open(__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), 'order_ablation.jsonl'))]
by={}
for r in rows: by.setdefault(r['seed'],{})[r['arm']]=r
seeds=sorted(s for s in by if len(by[s])==2)
for k in ('pgd10','clean'):
    d=[100*(by[s]['own'][k]-by[s]['torch_order'][k]) for s in seeds]
    n=len(d); m=sum(d)/n; sd=math.sqrt(sum((x-m)**2 for x in d)/(n-1)) if n>1 else float('nan')
    own=sum(100*by[s]['own'][k] for s in seeds)/n; tor=sum(100*by[s]['torch_order'][k] for s in seeds)/n
    pos=sum(1 for x in d if x>0); neg=sum(1 for x in d if x<0)
    print(f"{k}: seeds {seeds[0]}-{seeds[-1]} (n={n}) own {own:.2f} torch-order {tor:.2f} paired diff mean {m:+.2f} sd {sd:.2f} SE {sd/math.sqrt(n):.2f}; own higher in {pos}, lower in {neg}")
for s in seeds: print(s, ' '.join(f"{a} {100*by[s][a]['pgd10']:.2f}/{100*by[s][a]['clean']:.2f}" for a in ('own','torch_order')))
