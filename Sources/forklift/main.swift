import ForkliftEngine
print("forklift")
